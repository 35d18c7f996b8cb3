//! One `[[case]]` table as written (`RawCase`) and checking it into a [`Case`]: every
//! problem pushed with the case's position, the case returned only when it is sound.

use super::images::check_image;
use super::{Case, CaseInput, Split};
use crate::eval::Expectation;
use serde::Deserialize;
use std::path::Path;

/// The keys a `[[case]]` table may have.
pub(super) const CASE_FIELDS: &[&str] = &[
    "id", "text", "image", "prompt", "expect", "forbid", "safety", "weight", "split", "watch",
];

/// One `[[case]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCase {
    id: Option<String>,
    text: Option<String>,
    image: Option<String>,
    prompt: Option<String>,
    #[serde(default)]
    expect: Vec<ExpectEntry>,
    #[serde(default)]
    forbid: Vec<String>,
    safety: bool,
    weight: Option<f64>,
    split: Option<Split>,
    /// The right answer to each named watch.
    #[serde(default)]
    watch: std::collections::BTreeMap<String, bool>,
}

/// One `expect` entry: a word, or a list of synonyms of which any one counts.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum ExpectEntry {
    Word(String),
    Synonyms(Vec<String>),
}

/// Checks one deserialized case; pushes its problems and returns it only when it is sound.
pub(super) fn validate_case(
    dirs: (&Path, &Path),
    file: &Path,
    at: &str,
    label: &str,
    raw: RawCase,
    problems: &mut Vec<String>,
) -> Option<Case> {
    let before = problems.len();
    let fname = file.display();
    let id = raw.id.as_deref().map(str::trim).unwrap_or("").to_string();
    match &raw.id {
        None => problems.push(format!("{at}: {label}: missing id")),
        Some(_) if id.is_empty() => problems.push(format!("{at}: {label}: empty id")),
        Some(_) => {}
    }

    let input = match (&raw.text, &raw.image) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{at}: {label}: has both text and image (give exactly one)"
            ));
            None
        }
        (None, None) => {
            problems.push(format!(
                "{at}: {label}: has neither text nor image (give exactly one)"
            ));
            None
        }
        (Some(t), None) => {
            if t.trim().is_empty() {
                problems.push(format!("{at}: {label}: text is empty"));
                None
            } else {
                Some(CaseInput::Text(t.trim().to_string()))
            }
        }
        (None, Some(rel)) => check_image(dirs.0, dirs.1, rel).map_or_else(
            |why| {
                problems.push(format!("{fname}: {label}: image {rel} {why}"));
                None
            },
            |p| Some(CaseInput::Image(p)),
        ),
    };

    if raw.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
        problems.push(format!("{at}: {label}: prompt is empty (omit it instead)"));
    }

    let mut expect: Vec<Vec<String>> = Vec::new();
    for (i, entry) in raw.expect.into_iter().enumerate() {
        let group = match entry {
            ExpectEntry::Word(w) => vec![w],
            ExpectEntry::Synonyms(s) => s,
        };
        if group.is_empty() {
            problems.push(format!(
                "{at}: {label}: expect entry {} is an empty synonym list",
                i + 1
            ));
            continue;
        }
        if group.iter().any(|w| w.trim().is_empty()) {
            problems.push(format!(
                "{at}: {label}: expect entry {} has an empty word",
                i + 1
            ));
            continue;
        }
        expect.push(group.into_iter().map(|w| w.trim().to_string()).collect());
    }
    let mut forbid: Vec<String> = Vec::new();
    for w in raw.forbid {
        if w.trim().is_empty() {
            problems.push(format!("{at}: {label}: forbid has an empty word"));
        } else {
            forbid.push(w.trim().to_string());
        }
    }

    for id in raw.watch.keys() {
        if !crate::watch::spec::is_slug(id) {
            problems.push(format!(
                "{at}: {label}: watch {id:?} is not a watch id (lower-case letters, digits and _)"
            ));
        }
    }

    let weight = raw.weight.unwrap_or(1.0);
    if !(weight.is_finite() && weight > 0.0) {
        problems.push(format!(
            "{at}: {label}: weight must be a finite number > 0, got {weight}"
        ));
    }

    if problems.len() != before {
        return None;
    }
    Some(Case {
        id,
        input: input?,
        prompt: raw.prompt.map(|p| p.trim().to_string()),
        expectation: Expectation {
            expect,
            forbid,
            safety: raw.safety,
            watch: raw.watch,
        },
        weight,
        split: raw.split.unwrap_or(Split::Train),
        file: file.to_path_buf(),
        watches: Vec::new(),
    })
}
