//! Model output is untrusted: strip terminal control sequences and bound its length.
//! PLACEHOLDER bodies: replaced by the full implementation.

/// Remove every terminal control sequence and control character but newline.
pub fn strip_controls(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect()
}

/// Cut to at most `max_chars` characters, with a note saying how much was cut.
pub fn bound(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// `strip_controls` then `bound`: what may reach the screen.
pub fn for_screen(s: &str, max_chars: usize) -> String {
    bound(&strip_controls(s), max_chars)
}

/// Make control characters visible (`\x1b`, `\u{9b}`) for logs and files.
pub fn escape_controls(s: &str) -> String {
    s.to_string()
}
