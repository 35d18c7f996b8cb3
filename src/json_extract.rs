//! Finding JSON in model replies: fenced, wrapped in prose, with trailing commas.
//! PLACEHOLDER body: replaced by the full implementation.

/// The first JSON value (object or array) found in `text`.
pub fn find_json_value(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text.trim()).ok()
}
