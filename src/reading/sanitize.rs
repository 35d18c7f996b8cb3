//! Model output is untrusted: strip terminal control sequences and bound its length.
//!
//! [`strip_controls`] removes whole escape sequences (not just the ESC byte, which would
//! leave `]0;pwned` or `[31m` behind): CSI, OSC, DCS/SOS/PM/APC strings, two-character
//! escapes, their 8-bit C1 forms, every other control character but newline, and the
//! invisible Unicode characters that can reorder or hide what the user sees: bidi
//! controls, the other format characters (zero-width space, marks, word joiner, BOM, …)
//! and the tag characters (U+E0000 block, which can spell invisible text). The line and
//! paragraph separators U+2028/U+2029 become newlines.
//!
//! [`escape_controls`] makes the same characters visible instead (`\x1b`, `\u{200b}`), and
//! [`escape_json_invisibles`] escapes them inside serialised JSON, which serde_json writes
//! raw (C1, U+2028/U+2029, format and tag characters).

const ESC: char = '\x1b';
const BEL: char = '\x07';
/// 8-bit String Terminator.
const ST8: char = '\u{9c}';

/// Invisible characters that change or hide what is shown without being controls: every
/// Unicode format character (category Cf: bidi embeddings, overrides, isolates and marks
/// such as U+202E, U+200F, U+061C; zero-width space and joiners; word joiner; BOM; soft
/// hyphen; …) and the whole tag block U+E0000–U+E007F.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{600}'..='\u{605}'
            | '\u{61c}'
            | '\u{6dd}'
            | '\u{70f}'
            | '\u{890}'..='\u{891}'
            | '\u{8e2}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{110bd}'
            | '\u{110cd}'
            | '\u{13430}'..='\u{1343f}'
            | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: line breaks to some tools, not
/// to others (a JSON-lines reader splitting on them breaks a line in two).
fn is_unicode_line_break(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Remove every terminal control sequence and control character but newline.
/// Tabs become a space; CR, BEL, DEL, all other C0 and all C1 characters are dropped.
pub fn strip_controls(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ESC => i = skip_escape(&chars, i + 1),
            '\u{9b}' => i = skip_csi(&chars, i + 1),
            '\u{9d}' => i = skip_string(&chars, i + 1, true),
            // DCS, SOS, PM, APC.
            '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => i = skip_string(&chars, i + 1, false),
            '\n' => {
                out.push('\n');
                i += 1;
            }
            c if is_unicode_line_break(c) => {
                out.push('\n');
                i += 1;
            }
            '\t' => {
                out.push(' ');
                i += 1;
            }
            c if c.is_control() || is_invisible_format(c) => i += 1,
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `i` is just after an ESC; returns the index after the whole sequence.
fn skip_escape(chars: &[char], i: usize) -> usize {
    let Some(&next) = chars.get(i) else {
        return i;
    };
    match next {
        '[' => skip_csi(chars, i + 1),
        ']' => skip_string(chars, i + 1, true),
        'P' | 'X' | '^' | '_' => skip_string(chars, i + 1, false),
        // nF escapes: intermediates 0x20–0x2F then one final byte (e.g. ESC ( B).
        '\x20'..='\x2f' => {
            let mut j = i;
            while chars.get(j).is_some_and(|c| ('\x20'..='\x2f').contains(c)) {
                j += 1;
            }
            match chars.get(j) {
                Some(c) if ('\x30'..='\x7e').contains(c) => j + 1,
                _ => j,
            }
        }
        // Two-character escapes (ESC 7, ESC c, ESC M, …).
        '\x30'..='\x7e' => i + 1,
        // ESC followed by a control or non-ASCII char: drop the ESC alone, the next char
        // is handled on its own.
        _ => i,
    }
}

/// `i` is just after CSI; skip parameters (0x30–0x3F), intermediates (0x20–0x2F) and the
/// final byte (0x40–0x7E). A char outside those ranges aborts the sequence and is kept
/// for normal processing.
fn skip_csi(chars: &[char], mut i: usize) -> usize {
    while let Some(&c) = chars.get(i) {
        match c {
            '\x20'..='\x3f' => i += 1,
            '\x40'..='\x7e' => return i + 1,
            _ => return i,
        }
    }
    i
}

/// `i` is just after the opener of an OSC/DCS/SOS/PM/APC string; skip to its terminator
/// (ESC \ or 8-bit ST; BEL too when `bel_ends`). Unterminated strings swallow the rest.
fn skip_string(chars: &[char], mut i: usize, bel_ends: bool) -> usize {
    while let Some(&c) = chars.get(i) {
        match c {
            ST8 => return i + 1,
            BEL if bel_ends => return i + 1,
            ESC if chars.get(i + 1) == Some(&'\\') => return i + 2,
            _ => i += 1,
        }
    }
    i
}

/// Cut to at most `max_chars` characters, with a note saying how much was cut:
/// `"… [cut N chars]"` is appended, N being the number of characters removed. Never
/// splits a character.
pub fn bound(s: &str, max_chars: usize) -> String {
    let total = s.chars().count();
    if total <= max_chars {
        return s.to_string();
    }
    let cut_at = s.char_indices().nth(max_chars).map_or(s.len(), |(b, _)| b);
    format!("{}… [cut {} chars]", &s[..cut_at], total - max_chars)
}

/// `strip_controls` then `bound`: what may reach the screen.
pub fn for_screen(s: &str, max_chars: usize) -> String {
    bound(&strip_controls(s), max_chars)
}

/// Make control characters visible (`\x1b`, `\u{9b}`) for logs, files and messages that
/// echo what a file or a server said. C0 controls but `\n` and `\t`, and DEL, are
/// written as `\xNN`; C1 controls, format and tag characters (see
/// [`is_invisible_format`]) and U+2028/U+2029 as `\u{NN}`. Everything else is kept.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() || is_invisible_format(c) || is_unicode_line_break(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// `escape_controls` on one line: newlines and tabs escaped too (`\n`, `\t`), so what a
/// file or server said cannot start a line of its own in a message.
pub fn escape_line(s: &str) -> String {
    escape_controls(s).replace('\n', "\\n").replace('\t', "\\t")
}

/// Serialised JSON with the characters serde_json leaves raw escaped as `\uXXXX` (UTF-16
/// surrogate pairs above U+FFFF): C1 controls, which a terminal `cat`ing the file would
/// obey, U+2028/U+2029, which line-splitting tools treat as line ends, and format and tag
/// characters. Only valid on JSON text, where such characters can only be inside strings;
/// the value read back is unchanged.
pub fn escape_json_invisibles(json: String) -> String {
    let needs = |c: char| {
        ('\u{80}'..='\u{9f}').contains(&c) || is_unicode_line_break(c) || is_invisible_format(c)
    };
    if !json.chars().any(needs) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs(c) {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc_title_and_clipboard_are_removed_whole() {
        assert_eq!(strip_controls("\x1b]0;pwned\x07title"), "title");
        assert_eq!(strip_controls("a\x1b]52;c;SGVsbG8=\x07b"), "ab");
        assert_eq!(strip_controls("a\x1b]0;x\x1b\\b"), "ab");
        assert_eq!(strip_controls("a\x1b]0;x\u{9c}b"), "ab");
        // Unterminated OSC swallows to the end.
        assert_eq!(strip_controls("ok\x1b]0;never ends\nmore"), "ok");
    }

    #[test]
    fn csi_sequences_are_removed_whole() {
        assert_eq!(strip_controls("\x1b[2J\x1b[31mred\x1b[0m"), "red");
        assert_eq!(strip_controls("\x1b[?1049h\x1b[1;31;4mX"), "X");
        assert_eq!(strip_controls("a\x1b[ q b"), "a b");
        // Truncated CSI at the end.
        assert_eq!(strip_controls("a\x1b[31"), "a");
        // A non-CSI char aborts the sequence and is kept.
        assert_eq!(strip_controls("a\x1b[3\nb"), "a\nb");
    }

    #[test]
    fn eight_bit_c1_forms() {
        assert_eq!(strip_controls("\u{9b}31mred"), "red");
        assert_eq!(strip_controls("a\u{9d}0;t\x07b"), "ab");
        assert_eq!(strip_controls("a\u{9d}0;t\u{9c}b"), "ab");
        assert_eq!(strip_controls("a\u{90}qdata\x1b\\b"), "ab");
        assert_eq!(strip_controls("a\u{85}\u{8d}b"), "ab");
    }

    #[test]
    fn dcs_sos_pm_apc_and_two_char_escapes() {
        assert_eq!(strip_controls("a\x1bPq#0;2;0;0;0\x1b\\b"), "ab");
        assert_eq!(strip_controls("a\x1bXsos\x1b\\b"), "ab");
        assert_eq!(strip_controls("a\x1b^pm\x1b\\b"), "ab");
        assert_eq!(strip_controls("a\x1b_apc\x1b\\b"), "ab");
        // BEL does not end a DCS: all of it is swallowed up to ST.
        assert_eq!(strip_controls("a\x1bPx\x07y\x1b\\b"), "ab");
        assert_eq!(strip_controls("a\x1bcb\x1b7c\x1bMd"), "abcd");
        assert_eq!(strip_controls("a\x1b(Bb"), "ab");
        assert_eq!(strip_controls("trailing\x1b"), "trailing");
        assert_eq!(strip_controls("a\x1b\x1b[1mb"), "ab");
    }

    #[test]
    fn plain_controls() {
        assert_eq!(strip_controls("a\tb\r\nc\x07d\x00e\x7ff"), "a b\ncdef");
        assert_eq!(strip_controls("line1\nline2"), "line1\nline2");
        assert_eq!(strip_controls("héllo wörld ✓ 日本"), "héllo wörld ✓ 日本");
    }

    #[test]
    fn bidi_overrides_dropped() {
        assert_eq!(strip_controls("a\u{202e}evil\u{202c}b"), "aevilb");
        assert_eq!(strip_controls("\u{2066}x\u{2069}"), "x");
        for c in ['\u{202a}', '\u{202b}', '\u{202d}', '\u{2067}', '\u{2068}'] {
            assert_eq!(strip_controls(&format!("a{c}b")), "ab");
        }
    }

    #[test]
    fn format_and_tag_characters_dropped() {
        for c in [
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{200e}',
            '\u{200f}',
            '\u{61c}',
            '\u{202e}',
            '\u{2060}',
            '\u{feff}',
            '\u{ad}',
            '\u{e0001}',
            '\u{e0049}',
            '\u{e007f}',
        ] {
            assert_eq!(
                strip_controls(&format!("a{c}b")),
                "ab",
                "U+{:04X}",
                c as u32
            );
        }
        // An invisible "IGNORE" spelled in tag characters disappears whole.
        let tags: String = "IGNORE"
            .chars()
            .map(|c| char::from_u32(0xe0000 + c as u32).unwrap())
            .collect();
        assert_eq!(strip_controls(&format!("ok{tags}.")), "ok.");
        // Visible neighbours of those ranges are kept.
        assert_eq!(
            strip_controls("\u{2010}\u{2070}\u{fffc}"),
            "\u{2010}\u{2070}\u{fffc}"
        );
    }

    #[test]
    fn unicode_line_separators_become_newlines() {
        assert_eq!(strip_controls("a\u{2028}b\u{2029}c"), "a\nb\nc");
    }

    #[test]
    fn escape_line_keeps_one_line() {
        assert_eq!(escape_line("a\nb\tc\x1b[2J"), "a\\nb\\tc\\x1b[2J");
        assert_eq!(escape_line("x\u{2028}y"), "x\\u{2028}y");
    }

    #[test]
    fn json_invisibles_escaped_and_value_unchanged() {
        let original =
            "c1 \u{9b}31m ls \u{2028} ps \u{2029} zw \u{200b} rlo \u{202e} tag \u{e0049} ok é ✓";
        let json = serde_json::to_string(&serde_json::json!({ "s": original })).unwrap();
        let escaped = escape_json_invisibles(json);
        assert!(!escaped.chars().any(|c| {
            ('\u{80}'..='\u{9f}').contains(&c) || is_unicode_line_break(c) || is_invisible_format(c)
        }));
        assert!(
            escaped.contains("\\u009b")
                && escaped.contains("\\u2028")
                && escaped.contains("\\udb40\\udc49")
        );
        assert!(escaped.contains('é') && escaped.contains('✓'));
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back["s"], original);
    }

    #[test]
    fn bound_counts_chars_not_bytes() {
        assert_eq!(bound("hello", 5), "hello");
        assert_eq!(bound("hello", 10), "hello");
        assert_eq!(bound("hello world", 5), "hello… [cut 6 chars]");
        assert_eq!(bound("日本語テキスト", 3), "日本語… [cut 4 chars]");
        assert_eq!(bound("ééé", 0), "… [cut 3 chars]");
        assert_eq!(bound("", 0), "");
    }

    #[test]
    fn for_screen_strips_then_bounds() {
        // The escape does not count towards the length.
        assert_eq!(for_screen("\x1b[31mabc\x1b[0m", 3), "abc");
        assert_eq!(for_screen("\x1b[31mabcd", 3), "abc… [cut 1 chars]");
    }

    #[test]
    fn escape_controls_makes_them_visible() {
        assert_eq!(escape_controls("a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape_controls("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape_controls("a\tb\nc\rd\x7f"), "a\tb\nc\\x0dd\\x7f");
        assert_eq!(escape_controls("\u{202e}x"), "\\u{202e}x");
        assert_eq!(
            escape_controls("a\u{200b}b\u{2028}\u{e0041}"),
            "a\\u{200b}b\\u{2028}\\u{e0041}"
        );
        assert_eq!(escape_controls("plain ✓"), "plain ✓");
        assert!(!escape_controls("\x1b]0;t\x07")
            .chars()
            .any(|c| c.is_control()));
    }
}
