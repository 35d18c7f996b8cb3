//! Reading the student's stated confidence out of its answer.
//! PLACEHOLDER body: replaced by the full implementation.

/// An answer split into its description and stated confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAnswer {
    /// The answer without the confidence line, trimmed.
    pub description: String,
    /// In [0, 1]; None when missing or unreadable (never a made-up value).
    pub confidence: Option<f32>,
}

pub fn parse_answer(text: &str) -> ParsedAnswer {
    ParsedAnswer {
        description: text.trim().to_string(),
        confidence: None,
    }
}
