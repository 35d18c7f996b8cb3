//! Word matching for model answers: whole words, plural-tolerant, negation-aware.
//! PLACEHOLDER bodies: replaced by the full implementation.

/// True when `term` (a word or phrase) is mentioned as a whole word, case-insensitive,
/// singular/plural tolerant.
pub fn mentions(text: &str, term: &str) -> bool {
    text.to_lowercase().contains(&term.to_lowercase())
}

/// True when `term` is mentioned and at least one mention is not negated
/// ("no smoke", "no sign of fire", "not on fire", "without flames" do not count).
pub fn affirmed_mention(text: &str, term: &str) -> bool {
    mentions(text, term)
}

/// Does the answer flag safety-relevant activity? Negation-aware ("no safety concerns" is
/// not a flag). `keywords` are the configured safety words.
pub fn safety_stance(text: &str, keywords: &[String]) -> bool {
    keywords.iter().any(|k| affirmed_mention(text, k))
}
