//! The eval set (`eval/*.toml`): its cases and their types. Loading it, all or nothing,
//! with errors naming file and case, is `load.rs`; checking one case `check.rs`; its
//! images `images.rs`; the set's content hash `hash.rs`.
//!
//! Every `*.toml` file directly in the eval dir is read, sorted by file name. Each file holds
//! zero or more `[[case]]` tables:
//!
//! ```toml
//! [[case]]
//! id = "lighter-flame"          # unique across all files
//! text = "A person is holding a lighter with a visible flame."   # text XOR image
//! # image = "images/coffee.png" # relative to the eval dir
//! # prompt = "..."              # optional override of the task prompt
//! expect = ["person", ["flame", "fire"]]   # a word, or a list of synonyms (any one counts)
//! forbid = []                   # words the answer must not mention
//! safety = true                 # should the answer flag safety-relevant activity
//! weight = 1.0                  # optional, > 0, default 1
//! split = "train"               # "train" | "holdout", default train
//! ```
//!
//! Loading validates everything and reports every problem it finds (one per line) instead of
//! stopping at the first; nothing is returned from a half-read set.

mod check;
mod hash;
mod images;
mod load;

pub use load::load_eval_set;

/// The eval set of `config` (`paths.eval`), its cases asked the device's current watches.
pub fn load_for(config: &crate::config::Config) -> Result<EvalSet, EvalError> {
    load_eval_set(&config.paths.eval)?.watching(&config.current_watches())
}

use super::Expectation;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// The watches the student is asked on this case (all of the device's, as live; set by
    /// [`EvalSet::watching`]).
    pub watches: Vec<crate::watch::WatchSpec>,
}

#[derive(Debug, Clone)]
pub struct EvalSet {
    pub cases: Vec<Case>,
    pub files: Vec<PathBuf>,
    /// Hash of the files' contents (hex), for sidecars.
    pub hash: String,
}

impl EvalSet {
    /// The cases of one split, in load order.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(move |c| c.split == split)
    }

    /// Ask every case the device's `watches`, as a live frame is; a case that expects an
    /// answer to a watch that is not one of them is an error naming the case and the ids.
    pub fn watching(mut self, watches: &[crate::watch::WatchSpec]) -> Result<Self, EvalError> {
        let mut problems = Vec::new();
        for c in &mut self.cases {
            let unknown: Vec<&str> = c
                .expectation
                .watch
                .keys()
                .filter(|id| !watches.iter().any(|w| &w.id == *id))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                problems.push(format!(
                    "{}: case {:?} expects watch {} but no such watch is configured \
                     ([[watch]] in config.toml or skills/watches.toml)",
                    c.file.display(),
                    c.id,
                    unknown.join(", ")
                ));
            }
            c.watches = watches.to_vec();
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(EvalError(problems.join("\n")))
        }
    }

    /// `(train, holdout)` case counts.
    pub fn counts(&self) -> (usize, usize) {
        let train = self.split(Split::Train).count();
        (train, self.cases.len() - train)
    }
}

/// Everything wrong with an eval set, one problem per line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl EvalError {
    /// The individual problems (the message's lines).
    pub fn problems(&self) -> Vec<&str> {
        self.0.lines().collect()
    }
}

#[cfg(test)]
mod tests;
