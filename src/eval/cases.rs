//! Loading the eval set (`eval/*.toml`), all or nothing, with errors naming file and case.
//! PLACEHOLDER body: replaced by the full implementation.

use super::Expectation;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Holdout,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseInput {
    /// A scene described in words.
    Text(String),
    /// An image; the path is resolved (eval dir joined with the file's relative path).
    Image(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: String,
    pub input: CaseInput,
    /// Overrides the task prompt for this case.
    pub prompt: Option<String>,
    pub expectation: Expectation,
    pub weight: f64,
    pub split: Split,
    /// The file the case came from.
    pub file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct EvalSet {
    pub cases: Vec<Case>,
    pub files: Vec<PathBuf>,
    /// Hash of the files' contents (hex), for sidecars.
    pub hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

pub fn load_eval_set(dir: &Path) -> Result<EvalSet, EvalError> {
    Err(EvalError(format!(
        "eval set loading not implemented yet ({})",
        dir.display()
    )))
}
