//! Escalations become eval cases: a reviewed frame, its JPEG and the teacher's verdict
//! turn into a `[[case]]` appended to `eval/learned.toml` (never touching hand-written
//! case files), so the next upskill targets what the student really gets wrong.

use crate::eval::cases::Split;
use crate::verdict::Verdict;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

pub const LEARNED_FILE: &str = "learned.toml";
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
    let clean = crate::sanitize::strip_controls(item).replace('\n', " ");
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
    let source = crate::sanitize::strip_controls(&c.source).replace('\n', " ");
    format!("\n# source: {source}\n{body}")
}

/// Ids and count of the cases already in `learned.toml`.
pub fn existing(eval_dir: &Path) -> (HashSet<String>, usize) {
    let text = std::fs::read_to_string(eval_dir.join(LEARNED_FILE)).unwrap_or_default();
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

/// Copy each case's frame into `eval/images/learned/` and append the cases to
/// `eval/learned.toml` atomically (existing text kept byte for byte). Returns how many
/// cases were added (ids already present are skipped).
pub fn append_cases(eval_dir: &Path, cases: &[(LearnedCase, PathBuf)]) -> std::io::Result<usize> {
    let (ids, _) = existing(eval_dir);
    let path = eval_dir.join(LEARNED_FILE);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| HEADER.to_string());
    let mut added = 0;
    for (case, jpeg) in cases {
        if ids.contains(&case.id) {
            continue;
        }
        let dest = eval_dir.join(&case.image);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let bytes = std::fs::read(jpeg)?;
        crate::atomic::write_atomic(&dest, &bytes)?;
        text.push_str(&to_toml(case));
        added += 1;
    }
    if added > 0 {
        crate::atomic::write_atomic(&path, text.as_bytes())?;
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

/// Join a session log's answers, escalations and verdicts by (session, seq); also
/// returns how many answers the log holds per skill.
pub fn read_log(path: &Path) -> std::io::Result<(Vec<Reviewed>, BTreeMap<String, u64>)> {
    let text = std::fs::read_to_string(path)?;
    struct Answered {
        answer: String,
        confidence: Option<f32>,
        measured: Option<f32>,
        reasons: Vec<crate::policy::Reason>,
        skill: String,
    }
    #[derive(Default)]
    struct Partial {
        answer: Option<Answered>,
        frame: Option<PathBuf>,
        verdict: Option<Verdict>,
    }
    let mut m: BTreeMap<(String, u64), Partial> = BTreeMap::new();
    let mut answered: BTreeMap<String, u64> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}:{}: not a JSON line: {e}", path.display(), i + 1),
            )
        })?;
        let session = v["session"].as_str().unwrap_or("").to_string();
        let Some(seq) = v["seq"].as_u64() else {
            continue;
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
                m.entry(key).or_default().verdict =
                    serde_json::from_value(v["verdict"].clone()).ok();
            }
            _ => {}
        }
    }
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
    Ok((reviewed, answered))
}

/// `learn --from LOG`: add the reviewed frames (optionally only the disagreements).
pub fn learn_from_log(
    log: &Path,
    eval_dir: &Path,
    only_disagreements: bool,
) -> std::io::Result<(usize, usize)> {
    let (reviewed, _) = read_log(log)?;
    let (_, mut n) = existing(eval_dir);
    let mut cases = Vec::new();
    let mut skipped = 0;
    for r in reviewed {
        if only_disagreements && r.verdict.agrees != Some(false) {
            continue;
        }
        let Some(frame) = r.frame_path.clone().filter(|p| p.is_file()) else {
            skipped += 1;
            continue;
        };
        let id = format!("learned-{}-{:06}", r.session, r.seq);
        let image = format!("images/learned/{id}.jpg");
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
            None => skipped += 1,
        }
    }
    let added = append_cases(eval_dir, &cases)?;
    Ok((added, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict() -> Verdict {
        Verdict {
            truncated: false,
            agrees: Some(false),
            safety_relevant: Some(true),
            summary: "A person cooking while smoke rises from a pan.".into(),
            missed: vec!["smoke".into(), "the frying pan on the stove".into()],
            wrong: vec!["says the kitchen is empty".into(), "cat".into()],
            raw: None,
        }
    }

    #[test]
    fn words_from_verdict() {
        let e = expect_words(&verdict());
        assert_eq!(&e[..2], &["smoke".to_string(), "stove".to_string()]);
        assert!(e.contains(&"person".to_string()));
        assert!(!e.iter().any(|w| w == "the" || w == "while"));
        let f = forbid_words(&verdict(), &e);
        assert_eq!(f, vec!["empty".to_string(), "cat".to_string()]);
    }

    #[test]
    fn raw_verdict_gives_no_case() {
        let v = Verdict {
            raw: Some("text".into()),
            ..Verdict::default()
        };
        assert!(case_from_verdict("x", "images/x.jpg", &v, Split::Train, "s").is_none());
    }

    #[test]
    fn appends_without_touching_existing_text_and_loads() {
        let d = tempfile::tempdir().unwrap();
        let eval = d.path();
        let hand = "# my notes\n[[case]]\nid = \"hand\"\ntext = \"A dog.\"\nexpect = [\"dog\"]\nsafety = false\n";
        std::fs::write(eval.join(LEARNED_FILE), hand).unwrap();
        let jpeg = d.path().join("f.jpg");
        image::RgbImage::new(8, 8).save(&jpeg).unwrap();
        let c = case_from_verdict(
            "learned-a-1",
            "images/learned/a-1.jpg",
            &verdict(),
            Split::Holdout,
            "test",
        )
        .unwrap();
        assert_eq!(append_cases(eval, &[(c.clone(), jpeg.clone())]).unwrap(), 1);
        // Same id again: skipped.
        assert_eq!(append_cases(eval, &[(c, jpeg)]).unwrap(), 0);
        let text = std::fs::read_to_string(eval.join(LEARNED_FILE)).unwrap();
        assert!(text.starts_with(hand));
        assert!(text.contains("# source: test"));
        let set = crate::eval::cases::load_eval_set(eval).unwrap();
        let learned = set.cases.iter().find(|c| c.id == "learned-a-1").unwrap();
        assert_eq!(learned.split, Split::Holdout);
        assert!(learned.expectation.safety);
        assert!(learned
            .expectation
            .expect
            .iter()
            .any(|g| g == &vec!["smoke".to_string()]));
        assert_eq!(learned.expectation.forbid, vec!["empty", "cat"]);
        assert!(eval.join("images/learned/a-1.jpg").is_file());
    }
}
