//! Extracting candidate prompts from the teacher's reply.
//! PLACEHOLDER body: replaced by the full implementation.

/// Prompts found, and what was dropped and why.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Extracted {
    pub prompts: Vec<String>,
    /// (prompt start, reason) for each dropped entry.
    pub dropped: Vec<(String, String)>,
}

/// Err carries why nothing usable was found.
pub fn extract_prompts(reply: &str, max_chars: usize) -> Result<Extracted, String> {
    let _ = max_chars;
    match crate::json_extract::find_json_value(reply) {
        Some(serde_json::Value::Array(a)) => Ok(Extracted {
            prompts: a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            dropped: vec![],
        }),
        _ => Err("no JSON array of prompts in the reply".into()),
    }
}
