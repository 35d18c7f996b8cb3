//! Extracting candidate prompts from the teacher's reply.
//!
//! The reply should hold a JSON array of prompt strings, but teachers wrap it in fences
//! or prose, put it in an object (`{"prompts": [...]}`, `{"candidates": [...]}`, any
//! key), or give objects instead of strings (`{"prompt": "..."}`, `"text"`,
//! `"system_prompt"`, `"content"`). Each prompt is stripped of control characters
//! (newlines kept), trimmed, and dropped when empty, a duplicate (case- and
//! whitespace-insensitive) or longer than the limit.

use crate::reading::json_extract::find_json_array_or_object;
use crate::reading::sanitize::strip_controls;
use serde_json::Value;
use std::collections::HashSet;

/// Prompts found, and what was dropped and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extracted {
    pub prompts: Vec<String>,
    /// (prompt start, reason) for each dropped entry.
    pub dropped: Vec<(String, String)>,
}

/// Object fields that may hold the prompt text, in order of preference.
const PROMPT_FIELDS: &[&str] = &["prompt", "system_prompt", "text", "content"];

/// Object keys looked at first for the list of prompts.
const LIST_KEYS: &[&str] = &["prompts", "candidates", "system_prompts", "skills"];

/// How many characters of a dropped prompt are kept to name it.
const PREVIEW_CHARS: usize = 60;

/// Err carries why nothing usable was found.
pub fn extract_prompts(reply: &str, max_chars: usize) -> Result<Extracted, String> {
    let items = find_json_array_or_object(reply)
        .iter()
        .find_map(|v| prompt_items(v, 0))
        .ok_or_else(|| {
            format!(
                "no JSON array of prompts found in the teacher's reply: {}",
                preview(reply, 80)
            )
        })?;

    let mut out = Extracted::default();
    let mut seen = HashSet::new();
    for item in &items {
        let Some(raw) = item_text(item) else {
            out.dropped.push((
                preview(&item.to_string(), PREVIEW_CHARS),
                "not a prompt".into(),
            ));
            continue;
        };
        let prompt = strip_controls(raw).trim().to_string();
        if prompt.is_empty() {
            out.dropped.push((String::new(), "empty".into()));
            continue;
        }
        if prompt.chars().count() > max_chars {
            out.dropped.push((
                preview(&prompt, PREVIEW_CHARS),
                format!("over {max_chars} chars"),
            ));
            continue;
        }
        let key = prompt
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if !seen.insert(key) {
            out.dropped
                .push((preview(&prompt, PREVIEW_CHARS), "duplicate".into()));
            continue;
        }
        out.prompts.push(prompt);
    }

    if out.prompts.is_empty() {
        return Err(format!(
            "all {} prompts were dropped: {}",
            items.len(),
            summarize(&out.dropped)
        ));
    }
    Ok(out)
}

/// The list of prompt items inside `v`, if it holds one with at least one usable item.
fn prompt_items(v: &Value, depth: usize) -> Option<Vec<Value>> {
    match v {
        Value::Array(a) => a.iter().any(|x| item_text(x).is_some()).then(|| a.clone()),
        Value::Object(o) => {
            if item_text(v).is_some() {
                return Some(vec![v.clone()]);
            }
            if depth >= 2 {
                return None;
            }
            let preferred = LIST_KEYS.iter().filter_map(|k| o.get(*k));
            preferred
                .chain(o.values())
                .find_map(|x| prompt_items(x, depth + 1))
        }
        _ => None,
    }
}

/// The prompt text of one item: a string, or an object's prompt field.
fn item_text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => PROMPT_FIELDS
            .iter()
            .find_map(|f| o.get(*f).and_then(Value::as_str)),
        _ => None,
    }
}

/// First `n` chars on one line, control-free, with "…" when cut.
fn preview(s: &str, n: usize) -> String {
    let one_line = strip_controls(s).replace('\n', " ");
    let t = one_line.trim();
    let mut out: String = t.chars().take(n).collect();
    if t.chars().count() > n {
        out.push('…');
    }
    out
}

/// "2 empty, 1 duplicate": reasons counted in first-seen order.
fn summarize(dropped: &[(String, String)]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (_, why) in dropped {
        match counts.iter_mut().find(|(w, _)| *w == why.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((why, 1)),
        }
    }
    counts
        .iter()
        .map(|(w, n)| format!("{n} {w}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_array() {
        let e = extract_prompts(r#"["Describe the scene.", "List objects."]"#, 100).unwrap();
        assert_eq!(e.prompts, vec!["Describe the scene.", "List objects."]);
        assert!(e.dropped.is_empty());
    }

    #[test]
    fn fenced_and_prose_wrapped() {
        let r = "Here are my candidates:\n```json\n[\n  \"Be brief.\",\n  \"Be precise.\",\n]\n```\nGood luck!";
        let e = extract_prompts(r, 100).unwrap();
        assert_eq!(e.prompts, vec!["Be brief.", "Be precise."]);
        let r = "I propose [\"One.\", \"Two.\"] as the new skills.";
        assert_eq!(
            extract_prompts(r, 100).unwrap().prompts,
            vec!["One.", "Two."]
        );
    }

    #[test]
    fn object_holding_the_array_under_any_key() {
        let r = r#"{"prompts": ["A", "B"]}"#;
        assert_eq!(extract_prompts(r, 100).unwrap().prompts, vec!["A", "B"]);
        let r = r#"{"note": "x", "candidates": [{"prompt": "C"}, {"text": "D"}]}"#;
        assert_eq!(extract_prompts(r, 100).unwrap().prompts, vec!["C", "D"]);
        let r = r#"{"whatever": [{"system_prompt": "E"}], "count": 1}"#;
        assert_eq!(extract_prompts(r, 100).unwrap().prompts, vec!["E"]);
        let r = r#"{"result": {"prompts": ["F"]}}"#;
        assert_eq!(extract_prompts(r, 100).unwrap().prompts, vec!["F"]);
    }

    #[test]
    fn a_prose_example_without_prompts_is_skipped() {
        let r = "Scores were [0.5, 0.7]. New prompts:\n```json\n[\"G\"]\n```";
        assert_eq!(extract_prompts(r, 100).unwrap().prompts, vec!["G"]);
        let r = "Scores [0.5, 0.7], prompts [\"H\"]";
        assert_eq!(extract_prompts(r, 100).unwrap().prompts, vec!["H"]);
    }

    #[test]
    fn drops_with_reasons() {
        let r = r#"["  Keep me.  ", "", "   ", "keep   ME.", "x", "0123456789AB", 42]"#;
        let e = extract_prompts(r, 10).unwrap();
        assert_eq!(e.prompts, vec!["Keep me.", "x"]);
        assert_eq!(
            e.dropped,
            vec![
                (String::new(), "empty".to_string()),
                (String::new(), "empty".to_string()),
                ("keep   ME.".to_string(), "duplicate".to_string()),
                ("0123456789AB".to_string(), "over 10 chars".to_string()),
                ("42".to_string(), "not a prompt".to_string()),
            ]
        );
    }

    #[test]
    fn control_characters_stripped_newlines_kept() {
        let r = r#"["Line one\u001b[31m.\nLine\ttwo.\u001b]0;pwned\u0007"]"#;
        let e = extract_prompts(r, 100).unwrap();
        assert_eq!(e.prompts, vec!["Line one.\nLine two."]);
    }

    #[test]
    fn length_counts_chars_not_bytes() {
        let e = extract_prompts(r#"["ééééé"]"#, 5).unwrap();
        assert_eq!(e.prompts, vec!["ééééé"]);
    }

    #[test]
    fn no_json_is_an_error_quoting_the_reply() {
        let err = extract_prompts("I cannot help with that.", 100).unwrap_err();
        assert_eq!(
            err,
            "no JSON array of prompts found in the teacher's reply: I cannot help with that."
        );
        let long = "x".repeat(200);
        let err = extract_prompts(&long, 100).unwrap_err();
        assert!(err.ends_with(&format!("{}…", "x".repeat(80))), "{err}");
        assert!(extract_prompts("[1, 2, 3]", 100).is_err());
        assert!(extract_prompts("[]", 100).is_err());
        assert!(extract_prompts(r#"{"a": 1}"#, 100).is_err());
    }

    #[test]
    fn all_dropped_is_an_error() {
        let err = extract_prompts(r#"["", "  ", "waaaaaaay too long"]"#, 5).unwrap_err();
        assert_eq!(err, "all 3 prompts were dropped: 2 empty, 1 over 5 chars");
    }
}
