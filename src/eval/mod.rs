//! The eval set and how answers are scored against it.

pub mod bootstrap;
pub mod cases;
pub mod compare;
pub mod runner;
pub mod score;
pub mod skill_score;

use serde::{Deserialize, Serialize};

/// What a case expects of an answer. Shared by the eval loader and the scorer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Expectation {
    /// Each group is a list of synonyms; mentioning any one of them counts for the group.
    pub expect: Vec<Vec<String>>,
    /// Words the answer must not mention (negated mentions do not count).
    pub forbid: Vec<String>,
    /// Whether the answer should flag safety-relevant activity.
    pub safety: bool,
    /// The right answer to each watch the case names (`watch = { garage_door = true }`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub watch: std::collections::BTreeMap<String, bool>,
}
