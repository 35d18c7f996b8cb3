//! `finetune export`: the training set on disk. Everything is written into a staging
//! folder beside the target and moved into place at the end, so the target never holds half
//! an export; `--force` replaces only a folder an earlier export wrote (its marker file).
//! File names come from row ids; model text (skills, verdicts) goes only into JSON strings
//! and the card.

use super::card::{self, CardFacts};
use super::example::{self, Candidate, Only, Split};
use super::gather::{self, GatherError, LabelledRow};
use crate::config::Config;
use chrono::{DateTime, NaiveDateTime, Utc};
use std::path::{Path, PathBuf};

/// Which files the set is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An image folder with `metadata.jsonl` per split (Hugging Face `datasets`, TRL, Unsloth).
    Hf,
    /// LLaMA-Factory's multimodal ShareGPT JSON with its `dataset_info.json`.
    Sharegpt,
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub dir: PathBuf,
    pub since: Option<DateTime<Utc>>,
    pub format: Format,
    pub only: Only,
    pub holdout: f64,
    pub force: bool,
}

/// The file an export leaves in its folder, so `--force` knows the folder is one.
pub const MARKER: &str = ".gemmaedge-export";

/// Why an export did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The user's input cannot work (exit 2): the folder, the holdout share.
    #[error("{0}")]
    BadInput(String),
    /// Nothing to export (exit 1).
    #[error("{0}")]
    Nothing(String),
    #[error("{0}")]
    Io(String),
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub train: usize,
    pub test: usize,
    pub duplicates: usize,
    pub missing: usize,
    pub eval_images: usize,
}

/// Removes the staging folder unless the export finished.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn io_text(what: &Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!(
            "cannot write to {}: {}",
            what.display(),
            crate::files::access::denied_message(what, None)
        )
    } else {
        format!(
            "cannot write to {}: {e}; choose a folder you can write to",
            what.display()
        )
    }
}

/// Check the target folder and make the staging folder beside it.
fn prepare(o: &ExportOptions) -> Result<Staging, ExportError> {
    if !(0.0..=0.5).contains(&o.holdout) {
        return Err(ExportError::BadInput(format!(
            "--holdout {} is out of range: use 0 to 0.5 (the share of frames kept for test)",
            o.holdout
        )));
    }
    let dir = &o.dir;
    if let Ok(m) = std::fs::symlink_metadata(dir) {
        if !m.is_dir() {
            return Err(ExportError::BadInput(format!(
                "{} exists and is not a folder: choose a new or empty folder",
                dir.display()
            )));
        }
        let mut entries =
            std::fs::read_dir(dir).map_err(|e| ExportError::BadInput(io_text(dir, &e)))?;
        if entries.next().is_some() {
            if !o.force {
                return Err(ExportError::BadInput(format!(
                    "{} is not empty: choose a new or empty folder, or add --force to replace \
                     an earlier export",
                    dir.display()
                )));
            }
            if !dir.join(MARKER).is_file() {
                return Err(ExportError::BadInput(format!(
                    "refusing to replace {}: it does not hold an earlier export (no {MARKER} \
                     in it); choose a new or empty folder",
                    dir.display()
                )));
            }
        }
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| ExportError::BadInput(io_text(parent, &e)))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(|e| ExportError::BadInput(io_text(parent, &e)))?;
    Ok(Staging(Some(staging)))
}

/// The skill versions in `skills/history/` by the time they were saved, and the current one.
struct Skills {
    versions: Vec<(DateTime<Utc>, String)>,
    current: String,
}

impl Skills {
    fn load(config: &Config) -> Self {
        let mut versions = Vec::new();
        if let Ok(dir) = std::fs::read_dir(config.paths.skills.join("history")) {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix(".txt") else {
                    continue;
                };
                let Some((time, _score)) = stem.split_once("Z-") else {
                    continue;
                };
                let Ok(t) = NaiveDateTime::parse_from_str(time, "%Y%m%dT%H%M%S%.3f") else {
                    continue;
                };
                let Ok(text) = crate::files::bounded_read::read_regular_string(
                    &e.path(),
                    crate::files::bounded_read::MAX_SKILL_FILE_BYTES,
                ) else {
                    continue;
                };
                let text = crate::reading::sanitize::bound(
                    text.trim(),
                    crate::roles::skill::MAX_SKILL_CHARS,
                );
                if !text.is_empty() {
                    versions.push((t.and_utc(), text));
                }
            }
        }
        versions.sort_by_key(|v| v.0);
        let mut store = crate::roles::skill::SkillStore::open(&config.skill_path());
        Skills {
            versions,
            current: store.current().0.to_string(),
        }
    }

    /// The skill in use at `t`: the newest saved version from before it, else the current.
    fn at(&self, t: DateTime<Utc>) -> &str {
        self.versions
            .iter()
            .rev()
            .find(|v| v.0 <= t)
            .map_or(self.current.as_str(), |v| v.1.as_str())
    }
}

/// The perceptual hashes of the eval set's images (frames near them go to test only).
fn eval_hashes(config: &Config) -> Vec<u64> {
    let Ok(set) = crate::eval::cases::load_eval_set(&config.paths.eval) else {
        return Vec::new();
    };
    set.cases
        .iter()
        .filter_map(|c| match &c.input {
            crate::eval::cases::CaseInput::Image(p) => image::open(p).ok(),
            crate::eval::cases::CaseInput::Text(_) => None,
        })
        .map(|img| crate::frame::dhash::dhash(&img.to_rgb8()))
        .collect()
}

/// A saved frame's bytes when it is there and is a JPEG.
fn read_frame(path: &Path) -> Option<Vec<u8>> {
    let bytes = crate::files::bounded_read::read_regular(
        path,
        crate::files::bounded_read::MAX_IMAGE_FILE_BYTES,
    )
    .ok()?;
    bytes.starts_with(&[0xFF, 0xD8, 0xFF]).then_some(bytes)
}

fn write(path: &Path, data: &[u8]) -> Result<(), ExportError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| ExportError::Io(io_text(d, &e)))?;
    }
    std::fs::write(path, data).map_err(|e| ExportError::Io(io_text(path, &e)))
}

fn only_name(o: Only) -> &'static str {
    match o {
        Only::Corrected => "corrected",
        Only::Safety => "safety",
        Only::All => "all",
    }
}

/// Write the set. See the module doc.
pub fn export(config: &Config, o: &ExportOptions) -> Result<Summary, ExportError> {
    if !config.privacy.save_frames {
        return Err(ExportError::Nothing(
            "privacy.save_frames = false: escalated frames are not kept, so there are no \
             images to export (set privacy.save_frames = true and let the teacher review \
             frames first)"
                .into(),
        ));
    }
    let mut staging = prepare(o)?;
    let stage = staging.0.clone().unwrap_or_default();
    let rows = match gather::labelled_rows(config, o.since) {
        Ok(r) => r,
        Err(e @ GatherError::NoStore(_)) => {
            return Err(ExportError::Nothing(format!("nothing to export: {e}")))
        }
        Err(e) => return Err(ExportError::Io(e.to_string())),
    };
    let cands: Vec<Candidate> = rows
        .iter()
        .map(|r| Candidate {
            id: r.label.id,
            dhash: r.label.dhash,
            agrees: r.label.agrees,
            safety: r.label.safety,
        })
        .collect();
    let plan = example::plan(
        &cands,
        o.only,
        o.holdout,
        config.finetune.duplicate_bits,
        &eval_hashes(config),
    );
    let nothing = || {
        let since = o.since.map_or(String::new(), |s| {
            format!(" since {}", s.format("%Y-%m-%d %H:%M"))
        });
        let only = match o.only {
            Only::All => "",
            Only::Corrected => " that the teacher corrected",
            Only::Safety => " that the teacher called safety-relevant",
        };
        format!("nothing to export: no teacher-labelled frames{only}{since} in the history store")
    };
    if plan.chosen.is_empty() {
        return Err(ExportError::Nothing(nothing()));
    }
    let skills = Skills::load(config);
    let mut facts = CardFacts {
        format: match o.format {
            Format::Hf => "hf",
            Format::Sharegpt => "sharegpt",
        }
        .into(),
        only: only_name(o.only).into(),
        duplicates: plan.duplicates,
        student: config.student.model.clone(),
        teacher: config.teacher.model.clone(),
        ..CardFacts::default()
    };
    let mut lines: [Vec<serde_json::Value>; 2] = [Vec::new(), Vec::new()];
    let mut skill_use: Vec<(String, usize)> = Vec::new();
    for &(i, split) in &plan.chosen {
        let row: &LabelledRow = &rows[i];
        let Some(bytes) = row.frame_path.as_deref().and_then(read_frame) else {
            facts.missing += 1;
            continue;
        };
        let file = format!("{:08}.jpg", row.label.id);
        let skill = skills.at(row.label.at);
        let (system, user) = example::prompts(skill);
        let target = example::target(&row.verdict);
        let label = if row.label.agrees {
            "agreed"
        } else {
            "corrected"
        };
        let k = split == Split::Test;
        let record = match o.format {
            Format::Hf => {
                write(&stage.join(split.name()).join(&file), &bytes)?;
                serde_json::json!({
                    "file_name": file,
                    "messages": example::chat_messages(&system, &user, &target),
                    "label": label,
                    "safety": row.label.safety,
                })
            }
            Format::Sharegpt => {
                let rel = format!("images/{file}");
                write(&stage.join(&rel), &bytes)?;
                example::sharegpt_record(&system, &user, &target, &rel)
            }
        };
        lines[usize::from(k)].push(record);
        if row.label.agrees {
            facts.agreed += 1;
        } else {
            facts.corrected += 1;
        }
        facts.safety += usize::from(row.label.safety);
        let first = skill.lines().next().unwrap_or("").to_string();
        match skill_use.iter_mut().find(|s| s.0 == first) {
            Some(s) => s.1 += 1,
            None => skill_use.push((first, 1)),
        }
        if !facts.devices.contains(&row.device) && !row.device.is_empty() {
            facts.devices.push(row.device.clone());
        }
        facts.first = Some(facts.first.map_or(row.label.at, |f| f.min(row.label.at)));
        facts.last = Some(facts.last.map_or(row.label.at, |f| f.max(row.label.at)));
    }
    facts.train = lines[0].len();
    facts.test = lines[1].len();
    facts.eval_images = plan.eval_images;
    skill_use.sort_by_key(|s| std::cmp::Reverse(s.1));
    facts.skills = skill_use;
    if facts.train + facts.test == 0 {
        return Err(ExportError::Nothing(format!(
            "nothing to export: the {} chosen frames are all missing on disk (the store names \
             them under {}; were they removed?)",
            facts.missing,
            config.paths.logs.join("frames").display()
        )));
    }
    let json = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    match o.format {
        Format::Hf => {
            for (k, split) in [Split::Train, Split::Test].into_iter().enumerate() {
                if lines[k].is_empty() {
                    continue;
                }
                let mut body = String::new();
                for l in &lines[k] {
                    body.push_str(&json(l));
                    body.push('\n');
                }
                write(
                    &stage.join(split.name()).join("metadata.jsonl"),
                    body.as_bytes(),
                )?;
            }
        }
        Format::Sharegpt => {
            let mut info = serde_json::Map::new();
            for (k, split) in [Split::Train, Split::Test].into_iter().enumerate() {
                if lines[k].is_empty() {
                    continue;
                }
                let file = format!("gemmaedge_{}.json", split.name());
                let body = serde_json::to_vec_pretty(&lines[k]).unwrap_or_default();
                write(&stage.join(&file), &body)?;
                info.insert(
                    format!("gemmaedge_{}", split.name()),
                    serde_json::json!({
                        "file_name": file,
                        "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "system": "system", "images": "images"},
                    }),
                );
            }
            let body =
                serde_json::to_vec_pretty(&serde_json::Value::Object(info)).unwrap_or_default();
            write(&stage.join("dataset_info.json"), &body)?;
        }
    }
    write(&stage.join("README.md"), card::readme(&facts).as_bytes())?;
    let (system, _) = example::prompts(&skills.current);
    write(
        &stage.join("Modelfile"),
        card::modelfile(&config.student.model, &system).as_bytes(),
    )?;
    write(
        &stage.join(MARKER),
        b"written by gemmaedge-tui finetune export\n",
    )?;
    publish(&stage, &o.dir)?;
    staging.0 = None;
    Ok(Summary {
        train: facts.train,
        test: facts.test,
        duplicates: facts.duplicates,
        missing: facts.missing,
        eval_images: facts.eval_images,
    })
}

/// Move the finished staging folder to `dir`: into a missing or empty `dir`, or in place of
/// an earlier export (moved aside first, removed once the new one is in place).
fn publish(stage: &Path, dir: &Path) -> Result<(), ExportError> {
    let fail = |e: std::io::Error| ExportError::Io(io_text(dir, &e));
    let mut old = None;
    if dir.is_dir() {
        if std::fs::read_dir(dir).map_err(fail)?.next().is_none() {
            std::fs::remove_dir(dir).map_err(fail)?;
        } else {
            let mut aside = dir.as_os_str().to_owned();
            aside.push(format!(".replaced-{}", std::process::id()));
            let aside = PathBuf::from(aside);
            std::fs::rename(dir, &aside).map_err(fail)?;
            old = Some(aside);
        }
    }
    if let Err(e) = std::fs::rename(stage, dir) {
        if let Some(a) = &old {
            let _ = std::fs::rename(a, dir);
        }
        return Err(fail(e));
    }
    if let Some(a) = old {
        let _ = std::fs::remove_dir_all(a);
    }
    if let Some(p) = dir.parent().and_then(|p| std::fs::File::open(p).ok()) {
        let _ = p.sync_all();
    }
    Ok(())
}
