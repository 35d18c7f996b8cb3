//! Escalations become eval cases: a reviewed frame, its JPEG and the teacher's verdict
//! turn into a `[[case]]` appended to `eval/learned.toml` (never touching hand-written
//! case files), so the next upskill targets what the student really gets wrong.
//!
//! A session log is a file anyone may hand us, so nothing in it is trusted: a session id
//! must have the shape the program writes (`YYYYMMDD-HHMMSS`), a frame must resolve (links
//! followed) under the logs' `frames/` directory, be a regular file, start with the JPEG
//! signature and be at most [`MAX_FRAME_BYTES`], and every image written must land in
//! `eval/images/learned/`.

use crate::eval::cases::Split;
use crate::roles::verdict::Verdict;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const LEARNED_FILE: &str = "learned.toml";
/// Where learned frames go, relative to the eval dir.
pub const LEARNED_IMAGES: &str = "images/learned";
/// Largest saved frame accepted from a log (saved frames are model-size JPEGs, ~100 KB).
pub const MAX_FRAME_BYTES: u64 = 16 * 1024 * 1024;
const HEADER: &str =
    "# Cases learned from teacher reviews (`a` in the console, or `gemmaedge-tui learn`).\n\
# Appended automatically; edit freely. Hand-written cases live in the other files.\n";

const STOPWORDS: &[&str] = &[
    "the", "and", "with", "from", "that", "this", "there", "their", "they", "them", "have", "has",
    "are", "was", "were", "been", "being", "into", "onto", "near", "over", "under", "some", "any",
    "its", "it's", "his", "her", "who", "which", "what", "while", "where", "when", "frame",
    "image", "picture", "photo", "shows", "showing", "shown", "appears", "appear", "visible",
    "seems", "also", "very", "small", "large", "left", "right", "front", "back", "side", "next",
    "one", "two", "three", "several", "other", "another", "possibly", "likely", "about", "around",
    "scene", "view", "camera", "model", "answer", "not", "but", "for", "can", "could", "would",
    "should", "may", "might", "out", "off", "all", "each", "both", "than", "then", "just",
];

/// One learned case, ready to be written as TOML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnedCase {
    pub id: String,
    pub image: String,
    pub expect: Vec<String>,
    pub forbid: Vec<String>,
    pub safety: bool,
    pub split: Split,
    /// Where it came from (written as a `source` comment).
    #[serde(skip)]
    pub source: String,
}

fn content_words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_alphabetic() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// A short phrase stays as it is; a longer one gives its last content word.
fn key_term(item: &str) -> Option<String> {
    let clean = crate::reading::sanitize::strip_controls(item).replace('\n', " ");
    let words = content_words(&clean);
    if words.is_empty() {
        return None;
    }
    if clean.split_whitespace().count() <= 2 {
        Some(words.join(" "))
    } else {
        words.last().cloned()
    }
}

/// Words the answer should have mentioned: the `missed` items, then the summary's
/// content words (at most six in all, no duplicates).
pub fn expect_words(v: &Verdict) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let candidates = v
        .missed
        .iter()
        .filter_map(|m| key_term(m))
        .chain(content_words(&v.summary));
    for w in candidates {
        if seen.insert(w.clone()) {
            out.push(w);
        }
        if out.len() >= 6 {
            break;
        }
    }
    out
}

/// Words the answer must not say: the key term of each `wrong` item.
pub fn forbid_words(v: &Verdict, expect: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in v.wrong.iter().filter_map(|w| key_term(w)) {
        if !expect.contains(&w) && !out.contains(&w) {
            out.push(w);
        }
    }
    out.truncate(4);
    out
}

/// The case for a reviewed frame (None when the verdict is not a structured one).
pub fn case_from_verdict(
    id: &str,
    image_rel: &str,
    v: &Verdict,
    split: Split,
    source: &str,
) -> Option<LearnedCase> {
    v.agrees?;
    let expect = expect_words(v);
    if expect.is_empty() {
        return None;
    }
    Some(LearnedCase {
        id: id.to_string(),
        image: image_rel.to_string(),
        forbid: forbid_words(v, &expect),
        expect,
        safety: v.safety_relevant.unwrap_or(false),
        split,
        source: source.to_string(),
    })
}

/// TOML text for one case (strings escaped by the toml crate).
pub fn to_toml(c: &LearnedCase) -> String {
    #[derive(Serialize)]
    struct Wrap<'a> {
        case: [&'a LearnedCase; 1],
    }
    let body = toml::to_string(&Wrap { case: [c] }).unwrap_or_default();
    let source = crate::reading::sanitize::strip_controls(&c.source).replace('\n', " ");
    format!("\n# source: {source}\n{body}")
}

/// Ids and count of the cases already in `learned.toml`.
pub fn existing(eval_dir: &Path) -> (HashSet<String>, usize) {
    let text = read_learned(&eval_dir.join(LEARNED_FILE)).unwrap_or_default();
    let v: toml::Table = text.parse().unwrap_or_default();
    let ids: HashSet<String> = v
        .get("case")
        .and_then(|c| c.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("id").and_then(|i| i.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let n = ids.len();
    (ids, n)
}

/// Alternate train/holdout so both splits learn.
pub fn split_for(index: usize) -> Split {
    if index % 2 == 0 {
        Split::Train
    } else {
        Split::Holdout
    }
}

fn read_learned(path: &Path) -> std::io::Result<String> {
    crate::files::bounded_read::read_regular_string(
        path,
        crate::files::bounded_read::MAX_EVAL_FILE_BYTES,
    )
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

/// The session id shape [`crate::record::session_log::SessionLog`] writes: `YYYYMMDD-HHMMSS`.
pub fn is_session_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15
        && b.iter().enumerate().all(|(i, c)| {
            if i == 8 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// A learned image name: letters, digits, `-`, `_` and `.`, not starting with a dot,
/// ending in `.jpg` (what [`learn_from_log`] and the console make).
fn is_learned_name(name: &str) -> bool {
    name.len() <= 200
        && name.ends_with(".jpg")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Where a case's image goes: `image` must be `images/learned/<name>.jpg`, and the
/// directory must resolve (links followed) inside the eval dir. Creates the directory.
pub fn learned_dest(eval_dir: &Path, image: &str) -> std::io::Result<PathBuf> {
    let name = image
        .strip_prefix(LEARNED_IMAGES)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|n| is_learned_name(n))
        .ok_or_else(|| {
            invalid(format!(
                "refusing image path {}: learned images are {LEARNED_IMAGES}/<name>.jpg \
                 (letters, digits, - _ . only)",
                crate::reading::sanitize::escape_line(image)
            ))
        })?;
    let dir = eval_dir.join(LEARNED_IMAGES);
    std::fs::create_dir_all(&dir)?;
    let real_eval = eval_dir.canonicalize()?;
    let real_dir = dir.canonicalize()?;
    if !real_dir.starts_with(&real_eval) {
        return Err(invalid(format!(
            "refusing to write into {}: it leads outside the eval dir (to {})",
            dir.display(),
            real_dir.display()
        )));
    }
    Ok(real_dir.join(name))
}

/// Whether bytes start with the JPEG signature (SOI then a marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// Copy each case's frame into `eval/images/learned/` and append the cases to
/// `eval/learned.toml` atomically (existing text kept byte for byte). Returns how many
/// cases were added (ids already present are skipped). Every image must be a JPEG going to
/// [`learned_dest`]; the first that is not stops the whole append (nothing is written).
pub fn append_cases(eval_dir: &Path, cases: &[(LearnedCase, Arc<[u8]>)]) -> std::io::Result<usize> {
    let (ids, _) = existing(eval_dir);
    let path = eval_dir.join(LEARNED_FILE);
    let mut text = match read_learned(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
        Err(e) => return Err(e),
    };
    let mut writes = Vec::new();
    for (case, jpeg) in cases {
        if ids.contains(&case.id) {
            continue;
        }
        let dest = learned_dest(eval_dir, &case.image)?;
        if !is_jpeg(jpeg) {
            return Err(invalid(format!(
                "case {}: the frame is not a JPEG",
                crate::reading::sanitize::escape_line(&case.id)
            )));
        }
        writes.push((dest, jpeg));
        text.push_str(&to_toml(case));
    }
    let added = writes.len();
    for (dest, jpeg) in writes {
        crate::files::atomic::write_atomic(&dest, jpeg)?;
    }
    if added > 0 {
        crate::files::atomic::write_atomic(&path, text.as_bytes())?;
    }
    Ok(added)
}

/// One reviewed frame found in a session log.
#[derive(Debug, Clone)]
pub struct Reviewed {
    pub session: String,
    pub seq: u64,
    pub answer: String,
    pub confidence: Option<f32>,
    pub measured: Option<f32>,
    pub reasons: Vec<crate::policy::Reason>,
    pub skill: String,
    pub frame_path: Option<PathBuf>,
    pub verdict: Verdict,
}

/// What a session log holds, joined by (session, seq).
#[derive(Debug, Default)]
pub struct LogSummary {
    /// Answers with their verdicts.
    pub reviewed: Vec<Reviewed>,
    /// Answers per skill.
    pub answered: BTreeMap<String, u64>,
    /// Frames dropped from the full teacher queue, per trigger (`no confidence`, …; a
    /// frame with two triggers counts under both).
    pub dropped: BTreeMap<String, u64>,
    /// Frames dropped from the full teacher queue.
    pub dropped_frames: u64,
}

/// Join a session log's answers, escalations and verdicts by (session, seq); count the
/// answers per skill and the frames dropped from the teacher queue per trigger.
pub fn read_log(path: &Path) -> std::io::Result<LogSummary> {
    let mut m: BTreeMap<(String, u64), Partial> = BTreeMap::new();
    let mut answered: BTreeMap<String, u64> = BTreeMap::new();
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    let mut dropped_frames = 0u64;
    // Line by line from a regular file (a FIFO or /dev/zero is refused), each line capped.
    let lines = crate::files::bounded_read::for_each_line(
        path,
        crate::files::bounded_read::MAX_LOG_LINE_BYTES,
        |number, line| {
            if line.trim().is_empty() {
                return Ok(());
            }
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("line {number}: not a JSON line: {e}"),
                )
            })?;
            if v["type"] == "teacher_dropped" {
                dropped_frames += 1;
                let reasons: Vec<crate::policy::Reason> =
                    serde_json::from_value(v["reasons"].clone()).unwrap_or_default();
                for r in &reasons {
                    *dropped
                        .entry(crate::policy::calibration::trigger_name(r))
                        .or_default() += 1;
                }
            }
            read_line(v, &mut m, &mut answered);
            Ok(())
        },
    );
    lines.map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let reviewed = m
        .into_iter()
        .filter_map(|((session, seq), p)| {
            let Answered {
                answer,
                confidence,
                measured,
                reasons,
                skill,
            } = p.answer?;
            Some(Reviewed {
                session,
                seq,
                answer,
                confidence,
                measured,
                reasons,
                skill,
                frame_path: p.frame,
                verdict: p.verdict?,
            })
        })
        .collect();
    Ok(LogSummary {
        reviewed,
        answered,
        dropped,
        dropped_frames,
    })
}

/// One answer as read from a log, waiting for its verdict.
struct Answered {
    answer: String,
    confidence: Option<f32>,
    measured: Option<f32>,
    reasons: Vec<crate::policy::Reason>,
    skill: String,
}

/// What the log says about one (session, seq) so far.
#[derive(Default)]
struct Partial {
    answer: Option<Answered>,
    frame: Option<PathBuf>,
    verdict: Option<Verdict>,
}

/// Fold one log line into the map of frames and the answer counts per skill.
fn read_line(
    v: serde_json::Value,
    m: &mut BTreeMap<(String, u64), Partial>,
    answered: &mut BTreeMap<String, u64>,
) {
    let session = v["session"].as_str().unwrap_or("").to_string();
    let Some(seq) = v["seq"].as_u64() else {
        return;
    };
    let key = (session, seq);
    match v["type"].as_str() {
        Some("student_answer") => {
            let skill = v["skill"].as_str().unwrap_or("").to_string();
            *answered.entry(skill.clone()).or_default() += 1;
            m.entry(key).or_default().answer = Some(Answered {
                answer: v["answer"].as_str().unwrap_or("").to_string(),
                confidence: v["confidence"].as_f64().map(|c| c as f32),
                measured: v["measured_confidence"].as_f64().map(|c| c as f32),
                reasons: serde_json::from_value(v["reasons"].clone()).unwrap_or_default(),
                skill,
            });
        }
        Some("escalated") => {
            m.entry(key).or_default().frame = v["frame_path"].as_str().map(PathBuf::from);
        }
        Some("teacher_verdict") => {
            m.entry(key).or_default().verdict = serde_json::from_value(v["verdict"].clone()).ok();
        }
        _ => {}
    }
}

/// What `learn --from LOG` did.
#[derive(Debug, Default, PartialEq)]
pub struct Learned {
    pub added: usize,
    /// Reviewed frames without a saved frame or without a structured verdict.
    pub skipped: usize,
    /// Reviewed frames refused, each with why (escaped: safe to print).
    pub refused: Vec<String>,
}

/// The frames directories a log's frames may be in: `frames/` beside the log, and the
/// configured logs dir's (resolved; those that do not exist are left out).
fn frame_roots(log: &Path, logs_dir: &Path) -> Vec<PathBuf> {
    let beside = log
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("frames");
    let mut roots: Vec<PathBuf> = [beside, logs_dir.join("frames")]
        .iter()
        .filter_map(|d| d.canonicalize().ok())
        .collect();
    roots.dedup();
    roots
}

/// A reviewed frame's JPEG, if it may be used: it must resolve under one of `roots`, be
/// a regular file of at most [`MAX_FRAME_BYTES`] and start with the JPEG signature.
/// `Ok(None)` when it is simply gone (deleted since); `Err` says why it is refused.
pub fn read_frame(frame: &Path, roots: &[PathBuf]) -> Result<Option<Arc<[u8]>>, String> {
    let shown = || crate::reading::sanitize::escape_line(&frame.display().to_string());
    let real = match frame.canonicalize() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("frame {}: {e}", shown())),
    };
    if !roots.iter().any(|r| real.starts_with(r)) {
        return Err(format!(
            "frame {} is not in the logs' frames directory",
            shown()
        ));
    }
    let bytes = crate::files::bounded_read::read_regular(&real, MAX_FRAME_BYTES)
        .map_err(|e| format!("frame {}: {e}", shown()))?;
    if !is_jpeg(&bytes) {
        return Err(format!("frame {} is not a JPEG", shown()));
    }
    Ok(Some(bytes.into()))
}

/// `learn --from LOG`: add the reviewed frames (optionally only the disagreements).
/// Frames are taken only from the `frames/` directory beside the log or in `logs_dir`.
pub fn learn_from_log(
    log: &Path,
    eval_dir: &Path,
    logs_dir: &Path,
    only_disagreements: bool,
) -> std::io::Result<Learned> {
    let reviewed = read_log(log)?.reviewed;
    let roots = frame_roots(log, logs_dir);
    let (_, mut n) = existing(eval_dir);
    let mut cases = Vec::new();
    let mut out = Learned::default();
    for r in reviewed {
        if only_disagreements && r.verdict.agrees != Some(false) {
            continue;
        }
        if !is_session_id(&r.session) {
            out.refused.push(format!(
                "frame #{}: session id {:?} is not of the form YYYYMMDD-HHMMSS",
                r.seq,
                crate::reading::sanitize::escape_line(&r.session)
            ));
            continue;
        }
        let Some(path) = r.frame_path.as_deref() else {
            out.skipped += 1;
            continue;
        };
        let frame = match read_frame(path, &roots) {
            Ok(Some(f)) => f,
            Ok(None) => {
                out.skipped += 1;
                continue;
            }
            Err(why) => {
                out.refused
                    .push(format!("session {} frame #{}: {why}", r.session, r.seq));
                continue;
            }
        };
        let id = format!("learned-{}-{:06}", r.session, r.seq);
        let image = format!("{LEARNED_IMAGES}/{id}.jpg");
        let source = format!(
            "session {} frame #{} ({}), reasons: {}",
            r.session,
            r.seq,
            log.display(),
            r.reasons
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        match case_from_verdict(&id, &image, &r.verdict, split_for(n), &source) {
            Some(c) => {
                cases.push((c, frame));
                n += 1;
            }
            None => out.skipped += 1,
        }
    }
    out.added = append_cases(eval_dir, &cases)?;
    Ok(out)
}

#[cfg(test)]
#[path = "cases_tests.rs"]
mod tests;
