//! Reading what readiness and export need: the teacher-labelled frames from the history
//! store (read-only) and the finished upskill runs from their reports under `logs/`.

use super::readiness::{label_of, parse_hash, Labelled, RunGain};
use crate::config::Config;
use crate::roles::verdict::Verdict;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// A labelled frame with what export needs of it.
#[derive(Debug, Clone)]
pub struct LabelledRow {
    pub label: Labelled,
    pub verdict: Verdict,
    pub device: String,
    /// The saved frame (`privacy.save_frames`), as the store names it.
    pub frame_path: Option<PathBuf>,
}

/// Why nothing could be read.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(
        "no history yet at {0} (the engine writes it while it runs; `history import LOGDIR` \
         brings in old session logs)"
    )]
    NoStore(PathBuf),
    #[error("{0}")]
    Store(#[from] crate::history::schema::OpenError),
    #[error("history store: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The store's path for this config.
pub fn store_path(config: &Config) -> PathBuf {
    config.history.resolved(&config.paths.logs)
}

/// Every frame with a verdict that can be a label (not cut, not unreadable), oldest first,
/// from `since` on.
pub fn labelled_rows(
    config: &Config,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<LabelledRow>, GatherError> {
    let path = store_path(config);
    if !path.exists() {
        return Err(GatherError::NoStore(path));
    }
    let conn = crate::history::schema::open_read(&path)?;
    let mut st = conn.prepare(
        "SELECT id, at_ms, dhash, verdict, device, frame_path FROM frames
         WHERE verdict IS NOT NULL AND at_ms >= ?1 ORDER BY at_ms, id",
    )?;
    let from = since.map_or(i64::MIN, |s| s.timestamp_millis());
    let rows = st.query_map([from], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (id, at_ms, dhash, verdict, device, frame_path) = r?;
        let Ok(verdict) = serde_json::from_str::<Verdict>(&verdict) else {
            continue;
        };
        let Some((agrees, safety)) = label_of(&verdict) else {
            continue;
        };
        out.push(LabelledRow {
            label: Labelled {
                id,
                at: DateTime::from_timestamp_millis(at_ms).unwrap_or_default(),
                dhash: dhash.as_deref().and_then(parse_hash),
                agrees,
                safety,
            },
            verdict,
            device,
            frame_path: frame_path.map(PathBuf::from),
        });
    }
    Ok(out)
}

/// The largest upskill report read (they hold every case's answer per candidate).
const MAX_REPORT_BYTES: u64 = 32 * 1024 * 1024;

/// The finished upskill runs whose reports are under `logs`, oldest first. Reports that
/// cannot be read are passed over.
pub fn finished_runs(logs: &Path) -> Vec<RunGain> {
    let paths = crate::upskill::report::all(logs);
    let mut runs: Vec<RunGain> = paths
        .iter()
        .filter_map(|p| {
            let bytes = crate::files::bounded_read::read_regular(p, MAX_REPORT_BYTES).ok()?;
            let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            super::readiness::run_gain(&v)
        })
        .collect();
    runs.sort_by_key(|r| r.finished_at);
    runs
}

/// Readiness for this config: the store's labelled frames and the runs under `logs`.
pub fn readiness(config: &Config) -> Result<super::readiness::Readiness, GatherError> {
    let rows = labelled_rows(config, None)?;
    let frames: Vec<Labelled> = rows.into_iter().map(|r| r.label).collect();
    Ok(super::readiness::assess(
        &frames,
        &finished_runs(&config.paths.logs),
        &config.finetune,
        config.upskill.min_improvement,
    ))
}
