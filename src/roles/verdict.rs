//! The teacher's verdict on a student answer: asked for as JSON (Ollama's `format`
//! schema), parsed tolerantly, and kept as raw text when the model ignores the schema.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Verdict {
    /// None when the teacher's reply could not be read as a verdict.
    pub agrees: Option<bool>,
    pub safety_relevant: Option<bool>,
    pub summary: String,
    pub missed: Vec<String>,
    pub wrong: Vec<String>,
    /// The reply as text, when it was not the JSON asked for.
    pub raw: Option<String>,
    /// The reply was cut (token cap) before its JSON closed: the fields here are what
    /// was complete. A cut verdict never counts as an agreement (`agrees` is then only
    /// ever `Some(false)` or `None`).
    #[serde(default)]
    pub truncated: bool,
}
