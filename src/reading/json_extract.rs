//! Finding JSON in model replies: fenced, wrapped in prose, with trailing commas.
//!
//! Candidates, in order: the whole text; the contents of each ```` ``` ```` / ```` ```json ````
//! fence; then every balanced `{…}` / `[…]` found by scanning the text (string-aware:
//! brackets inside JSON strings do not count). Each candidate is parsed as is, then
//! with trailing commas (`,]`, `,}` outside strings) removed. Only objects and arrays
//! count as found.

use serde_json::{Map, Value};

/// Upper bound on characters examined by the bracket scan, so a hostile reply full of
/// unclosed brackets cannot make the scan quadratic without end.
const SCAN_BUDGET: usize = 4_000_000;

/// The first JSON value (object or array) found in `text`.
pub fn find_json_value(text: &str) -> Option<Value> {
    let mut found = None;
    visit_candidates(text, &mut |v| {
        found = Some(v);
        true
    });
    found
}

/// Every JSON object or array found in `text`, in the order [`find_json_value`] tries
/// them (whole text, fences, then the top-level balanced spans of the scan). Lets a
/// caller pick the first one of the shape it needs.
pub fn find_json_array_or_object(text: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    visit_candidates(text, &mut |v| {
        if !all.contains(&v) {
            all.push(v);
        }
        false
    });
    all
}

/// What a JSON object cut short holds: the members before the cut, in order. A string
/// value cut in the middle is kept as far as it came (marked by the caller); a cut array
/// or object value is left out. None when no object starts in `text` or no member is
/// complete.
pub fn salvage_object(text: &str) -> Option<Map<String, Value>> {
    let start = text.find('{')?;
    let mut rest = text[start + 1..].trim_start();
    let mut out = Map::new();
    while let Some(after_quote) = rest.strip_prefix('"') {
        let Some(key_end) = string_end(after_quote) else {
            break;
        };
        let Ok(key) = serde_json::from_str::<String>(&rest[..key_end + 2]) else {
            break;
        };
        rest = after_quote[key_end + 1..].trim_start();
        let Some(r) = rest.strip_prefix(':') else {
            break;
        };
        rest = r.trim_start();
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match values.next() {
            Some(Ok(v)) => {
                let used = values.byte_offset();
                out.insert(key, v);
                rest = rest[used..].trim_start();
            }
            _ => {
                // A string cut inside: keep what came (closed, so it parses).
                if let Some(body) = rest.strip_prefix('"') {
                    if string_end(body).is_none() {
                        let mut body = body.to_string();
                        if body.ends_with('\\') && !body.ends_with("\\\\") {
                            body.pop();
                        }
                        if let Ok(s) = serde_json::from_str::<String>(&format!("\"{body}\"")) {
                            out.insert(key, Value::String(s));
                        }
                    }
                }
                break;
            }
        }
        match rest.as_bytes().first() {
            Some(b',') => rest = rest[1..].trim_start(),
            _ => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Byte index of the closing quote of a JSON string body (after its opening quote).
fn string_end(body: &str) -> Option<usize> {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Calls `f` with each candidate value; stops when `f` returns true.
fn visit_candidates(text: &str, f: &mut dyn FnMut(Value) -> bool) {
    if let Some(v) = parse_candidate(text) {
        if f(v) {
            return;
        }
    }
    for block in fenced_blocks(text) {
        if let Some(v) = parse_candidate(block) {
            if f(v) {
                return;
            }
        }
    }
    let bytes = text.as_bytes();
    let mut budget = SCAN_BUDGET;
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'{' | b'[') {
            if let Some(end) = balanced_end(bytes, i, &mut budget) {
                if let Some(v) = parse_candidate(&text[i..end]) {
                    if f(v) {
                        return;
                    }
                    // Continue after this value: its insides are not separate finds.
                    i = end;
                    continue;
                }
            }
            if budget == 0 {
                return;
            }
        }
        i += 1;
    }
}

/// Parse `s` (trimmed) as an object or array, as is or with trailing commas removed.
fn parse_candidate(s: &str) -> Option<Value> {
    let s = s.trim();
    if !(s.starts_with('{') || s.starts_with('[')) {
        return None;
    }
    let ok = |v: Value| matches!(v, Value::Object(_) | Value::Array(_)).then_some(v);
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        return ok(v);
    }
    let repaired = remove_trailing_commas(s);
    if repaired != s {
        if let Ok(v) = serde_json::from_str::<Value>(&repaired) {
            return ok(v);
        }
    }
    None
}

/// Contents of ``` fences, in order. The language tag after the opening fence is
/// skipped; an unclosed fence runs to the end of the text.
fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        // Skip the info string ("json", "JSON", …) up to the end of the line.
        let body_start = after.find('\n').map_or(after.len(), |n| n + 1);
        let info = &after[..body_start];
        let body = if info.trim_start().starts_with(['{', '[']) {
            // ```[ ... ]``` on one line: no info string.
            after
        } else {
            &after[body_start..]
        };
        match body.find("```") {
            Some(close) => {
                blocks.push(&body[..close]);
                rest = &body[close + 3..];
            }
            None => {
                blocks.push(body);
                break;
            }
        }
    }
    blocks
}

/// Byte index after the bracket that balances the one at `start`, string-aware.
/// None on a mismatched closer or when the text ends first.
fn balanced_end(bytes: &[u8], start: usize, budget: &mut usize) -> Option<usize> {
    let mut stack: Vec<u8> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for (k, &c) in bytes.iter().enumerate().skip(start) {
        if *budget == 0 {
            return None;
        }
        *budget -= 1;
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' => stack.push(b'}'),
            b'[' => stack.push(b']'),
            b'}' | b']' => {
                if stack.pop() != Some(c) {
                    return None;
                }
                if stack.is_empty() {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// Remove commas that are followed (after whitespace) by `]` or `}`, outside strings.
fn remove_trailing_commas(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_string = false;
    let mut escaped = false;
    for (k, &c) in chars.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            out.push(c);
            continue;
        }
        if c == '"' {
            in_string = true;
        } else if c == ',' {
            let next = chars[k + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some(']' | '}')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salvage_keeps_the_members_before_the_cut() {
        let m = salvage_object(r#"Here: {"a": true, "b": [1, 2], "c": "par"#).unwrap();
        assert_eq!(m["a"], true);
        assert_eq!(m["b"], serde_json::json!([1, 2]));
        assert_eq!(m["c"], "par");
        let m = salvage_object(r#"{"a": 1, "b": [1, 2"#).unwrap();
        assert_eq!(m.len(), 1, "a cut list is left out");
        let m = salvage_object(r#"{"s": "quote \" and \u00e9 and cut \"#).unwrap();
        assert_eq!(m["s"], "quote \" and é and cut ");
        assert!(salvage_object("no object here").is_none());
        assert!(salvage_object(r#"{"a"#).is_none());
        assert!(salvage_object(r#"{"a": "#).is_none());
    }
    use serde_json::json;

    #[test]
    fn whole_text() {
        assert_eq!(find_json_value(r#"  {"a": 1}  "#), Some(json!({"a": 1})));
        assert_eq!(find_json_value("[1, 2]"), Some(json!([1, 2])));
    }

    #[test]
    fn scalars_and_garbage_are_not_found() {
        assert_eq!(find_json_value("42"), None);
        assert_eq!(find_json_value(r#""just a string""#), None);
        assert_eq!(find_json_value("no json here"), None);
        assert_eq!(find_json_value(""), None);
        assert_eq!(find_json_value("{ broken: yes }"), None);
        assert_eq!(find_json_value("[[[[[["), None);
    }

    #[test]
    fn fenced() {
        let t = "Here you go:\n```json\n{\"a\": [1, 2]}\n```\nThanks.";
        assert_eq!(find_json_value(t), Some(json!({"a": [1, 2]})));
        let t = "Here:\n```\n[\"x\", \"y\"]\n```";
        assert_eq!(find_json_value(t), Some(json!(["x", "y"])));
        let t = "```JSON\n[\"x\"]";
        assert_eq!(find_json_value(t), Some(json!(["x"])));
        let t = "```[1]```";
        assert_eq!(find_json_value(t), Some(json!([1])));
        // A first fence that is not JSON is skipped.
        let t = "```text\nhello {\n```\n```json\n{\"b\": 2}\n```";
        assert_eq!(find_json_value(t), Some(json!({"b": 2})));
    }

    #[test]
    fn fence_wins_over_earlier_prose_brackets() {
        let t = "Use [1] as an example.\n```json\n[\"real\"]\n```";
        assert_eq!(find_json_value(t), Some(json!(["real"])));
    }

    #[test]
    fn prose_wrapped() {
        let t = "Sure! The answer is {\"ok\": true, \"n\": 3}. Hope that helps {";
        assert_eq!(find_json_value(t), Some(json!({"ok": true, "n": 3})));
        let t = "Prompts [see below]: [\"one\", \"two\"] done";
        assert_eq!(find_json_value(t), Some(json!(["one", "two"])));
    }

    #[test]
    fn braces_inside_strings_do_not_count() {
        let t = r#"Result: {"text": "a } tricky ] value {", "q": "\"}"} trailing"#;
        assert_eq!(
            find_json_value(t),
            Some(json!({"text": "a } tricky ] value {", "q": "\"}"}))
        );
    }

    #[test]
    fn trailing_commas_repaired() {
        let t = "```json\n{\"a\": [1, 2, ], \"b\": \"x,]\",}\n```";
        assert_eq!(find_json_value(t), Some(json!({"a": [1, 2], "b": "x,]"})));
        let t = "text [\"a\",\n \"b\",\n] more";
        assert_eq!(find_json_value(t), Some(json!(["a", "b"])));
    }

    #[test]
    fn mismatched_brackets_then_valid() {
        let t = "oops {] and then [\"fine\"]";
        assert_eq!(find_json_value(t), Some(json!(["fine"])));
    }

    #[test]
    fn all_candidates_in_order() {
        let t = "{\"a\": 1} and [2] and {\"a\": 1}";
        assert_eq!(
            find_json_array_or_object(t),
            vec![json!({"a": 1}), json!([2])]
        );
        assert!(find_json_array_or_object("nothing").is_empty());
    }

    #[test]
    fn unicode_prose_is_fine() {
        let t = "Voilà — résultat: {\"é\": \"ü\"} ✓";
        assert_eq!(find_json_value(t), Some(json!({"é": "ü"})));
    }
}
