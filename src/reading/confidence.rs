//! Reading the student's stated confidence out of its answer.
//!
//! The confidence is looked for in the last [`SEARCH_LINES`] non-empty lines, from the
//! end. Accepted forms (any case, markdown bold allowed): `CONFIDENCE: 0.8`,
//! `Confidence: 80%`, `**Confidence:** 0.8`, `confidence = .8`, `Confidence - 0.75`,
//! `CONFIDENCE: 0.9.`, `Confidence level: 0.7`, `(confidence: 0.6)`, and, when the value
//! reads as a number, `Confidence 0.8` / `confidence is 0.8`; template echoes
//! `Confidence: <0.8>` / `[0.8]`.
//!
//! Values: a plain number must lie in [0, 1] (float error within [`TOLERANCE`] is
//! clamped); a percentage in [0 %, 100 %] is divided by 100, and so are `/100`
//! fractions; `8/10` is 0.8, `0.8/1` is 0.8. Anything else (`high`, `7`, `-1`, `NaN`,
//! `inf`, `1.5`, `150%`, `0,8`, `7/12`, `11/10`, nothing) gives `None`: a value is
//! never made up. A `CONFIDENCE:` line with such a value still counts as the confidence
//! line and is removed from the description.

/// How many non-empty lines, from the end, may hold the confidence.
pub const SEARCH_LINES: usize = 3;

/// Float error tolerated at the ends of the range, then clamped away.
pub const TOLERANCE: f64 = 1e-6;

/// An answer split into its description and stated confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAnswer {
    /// The answer without the confidence line, trimmed.
    pub description: String,
    /// In [0, 1]; None when missing or unreadable (never a made-up value).
    pub confidence: Option<f32>,
}

pub fn parse_answer(text: &str) -> ParsedAnswer {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let candidates: Vec<usize> = (0..lines.len())
        .rev()
        .filter(|&i| !lines[i].trim().is_empty())
        .take(SEARCH_LINES)
        .collect();
    for i in candidates {
        if let Some(m) = find_marker(&lines[i]) {
            let line = &lines[i];
            let prefix = &line[..m.start];
            let suffix = &line[m.end..];
            if is_markup_only(prefix) {
                lines.remove(i);
            } else {
                let mut kept = prefix.trim_end().to_string();
                let suffix = suffix.trim();
                if !suffix.is_empty() {
                    kept.push(' ');
                    kept.push_str(suffix);
                }
                lines[i] = kept;
            }
            return ParsedAnswer {
                description: clean_description(&lines.join("\n")),
                confidence: m.value,
            };
        }
    }
    ParsedAnswer {
        description: clean_description(text),
        confidence: None,
    }
}

/// A confidence marker found in a line: byte span to remove and the value read.
#[derive(Debug, PartialEq)]
struct Marker {
    start: usize,
    end: usize,
    value: Option<f32>,
}

const WORD: &str = "confidence";

fn is_markup(b: u8) -> bool {
    matches!(b, b'*' | b'_' | b'`')
}

fn is_markup_only(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_whitespace() || "*_`#>-([".contains(c))
}

fn find_marker(line: &str) -> Option<Marker> {
    let lower = line.to_ascii_lowercase();
    let b = lower.as_bytes();
    let positions: Vec<usize> = lower.match_indices(WORD).map(|(p, _)| p).collect();
    for &p in positions.iter().rev() {
        if p > 0 && b[p - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut j = p + WORD.len();
        if b.get(j).is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        j = skip(b, j, |c| c.is_ascii_whitespace() || is_markup(c));
        for qualifier in ["level", "score", "rating", "value"] {
            if lower[j..].starts_with(qualifier)
                && !b
                    .get(j + qualifier.len())
                    .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                j = skip(b, j + qualifier.len(), |c| {
                    c.is_ascii_whitespace() || is_markup(c)
                });
                break;
            }
        }
        let mut strong = false;
        // A dash separates only when followed by a space: "Confidence -1" is not 1.
        for sep in [":", "=", "- ", "\u{2013} ", "\u{2014} "] {
            if lower[j..].starts_with(sep) {
                j += sep.len();
                strong = true;
                break;
            }
        }
        if !strong {
            for filler in ["is ", "of ", "at "] {
                if lower[j..].starts_with(filler) {
                    j += filler.len();
                    break;
                }
            }
        }
        j = skip(b, j, |c| c.is_ascii_whitespace() || is_markup(c));
        let (value, value_end) = read_value(&lower, j);
        let start = {
            let mut s = p;
            while s > 0 && matches!(b[s - 1], b'*' | b'_' | b'(' | b'[') {
                s -= 1;
            }
            while s > 0 && matches!(b[s - 1], b' ' | b'\t') {
                s -= 1;
            }
            s
        };
        let at_line_start = is_markup_only(&line[..start]);
        // A weak form ("confidence 0.8") needs a readable value; a strong form with an
        // unreadable value must stand at the start of its line, so prose such as
        // "I say with confidence: a cat" is not mistaken for it.
        let accept = value.is_some() || (strong && at_line_start);
        if !accept {
            continue;
        }
        let end = skip(b, value_end, |c| {
            c.is_ascii_whitespace() || is_markup(c) || matches!(c, b')' | b']' | b'.' | b'!')
        });
        return Some(Marker { start, end, value });
    }
    None
}

fn skip(b: &[u8], mut j: usize, pred: impl Fn(u8) -> bool) -> usize {
    while j < b.len() && pred(b[j]) {
        j += 1;
    }
    j
}

/// Read the value starting at byte `j` of the (ASCII-lowercased) line. Returns the value
/// (None when unreadable or out of range) and the byte index after what was consumed.
///
/// Besides `0.8` and `80%`: a template echo in angle or square brackets (`<0.8>`,
/// `[0.8]`: the skill wrote `<a number from 0.0 to 1.0>` and the model kept the
/// brackets), and the fractions `0.8/1`, `8/10`, `80/100` (a scale the model named
/// itself; any other denominator is ambiguous and unreadable).
fn read_value(lower: &str, j: usize) -> (Option<f32>, usize) {
    let b = lower.as_bytes();
    let token_end = || skip(b, j, |c| !c.is_ascii_whitespace());
    let closing = match b.get(j) {
        Some(b'<') => Some(b'>'),
        Some(b'[') => Some(b']'),
        _ => None,
    };
    let start = if closing.is_some() {
        skip(b, j + 1, |c| c == b' ')
    } else {
        j
    };
    let run_end = skip(b, start, |c| c.is_ascii_digit() || c == b'.');
    if run_end == start {
        return (None, token_end());
    }
    let number = lower[start..run_end].trim_end_matches('.');
    let mut k = run_end;
    let after_spaces = skip(b, k, |c| c == b' ');
    let percent = b.get(after_spaces) == Some(&b'%');
    // The scale the value is on: 1 (plain), 100 (percent or /100), 10 (/10).
    let mut scale = 1.0;
    if percent {
        k = after_spaces + 1;
        scale = 100.0;
    } else if b.get(k) == Some(&b'/') {
        let den_end = skip(b, k + 1, |c| c.is_ascii_digit());
        scale = match &lower[k + 1..den_end] {
            "1" => 1.0,
            "10" => 10.0,
            "100" => 100.0,
            _ => return (None, token_end()),
        };
        k = den_end;
        // A sentence's full stop after the fraction ("7/10.").
        if b.get(k) == Some(&b'.') && !b.get(k + 1).is_some_and(|c| c.is_ascii_digit()) {
            k += 1;
        }
    }
    if let Some(close) = closing {
        let at = skip(b, k, |c| c == b' ');
        if b.get(at) != Some(&close) {
            return (None, token_end());
        }
        k = at + 1;
    }
    // What follows must end the value: nothing, whitespace, or closing punctuation not
    // followed by a digit ("0,8", "7/12", "0.8abc" and "1e-3" are unreadable).
    let ok_follow = match b.get(k) {
        None => true,
        Some(c) if c.is_ascii_whitespace() => true,
        Some(b',' | b';' | b'!' | b'?' | b')' | b']' | b'*' | b'_' | b'"' | b'\'') => {
            !b.get(k + 1).is_some_and(|c| c.is_ascii_digit())
        }
        Some(_) => false,
    };
    if !ok_follow {
        return (None, token_end());
    }
    let Ok(v) = number.parse::<f64>() else {
        return (None, k);
    };
    if !(-TOLERANCE * scale..=scale + TOLERANCE * scale).contains(&v) {
        return (None, k);
    }
    ((Some((v / scale).clamp(0.0, 1.0) as f32)), k)
}

/// Trim, and drop leading/trailing lines made only of markdown punctuation and a
/// trailing lone `**`/`__`.
fn clean_description(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    let is_decor = |l: &str| {
        let t = l.trim();
        t.is_empty() || t.chars().all(|c| "*_-#`=~>".contains(c))
    };
    let first = lines.iter().position(|l| !is_decor(l));
    let last = lines.iter().rposition(|l| !is_decor(l));
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    let mut out = lines[first..=last].join("\n").trim().to_string();
    while let Some((head, tail)) = out.rsplit_once(char::is_whitespace) {
        if tail.is_empty() || !tail.chars().all(|c| c == '*' || c == '_') {
            break;
        }
        out = head.trim_end().to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Option<f32> {
        parse_answer(text).confidence
    }

    fn close(a: Option<f32>, b: f32) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-6)
    }

    #[test]
    fn accepted_formats() {
        for (text, want) in [
            ("A cat.\nCONFIDENCE: 0.8", 0.8),
            ("A cat.\nConfidence: 80%", 0.8),
            ("A cat.\n**Confidence:** 0.8", 0.8),
            ("A cat.\n**Confidence**: 0.8", 0.8),
            ("A cat.\nConfidence: **0.8**", 0.8),
            ("A cat.\nconfidence = .8", 0.8),
            ("A cat.\nConfidence - 0.75", 0.75),
            ("A cat.\nConfidence \u{2013} 0.75", 0.75),
            ("A cat.\nCONFIDENCE: 0.9.", 0.9),
            ("A cat.\nConfidence level: 0.7", 0.7),
            ("A cat.\n(confidence: 0.6)", 0.6),
            ("A cat.\nConfidence 0.65", 0.65),
            ("A cat.\nMy confidence is 0.4", 0.4),
            ("A cat.\nConfidence: 80 %", 0.8),
            ("A cat.\nCONFIDENCE_SCORE: 0.3", 0.3),
            ("A cat.\nConfidence: 1", 1.0),
            ("A cat.\nConfidence: 0", 0.0),
            ("A cat.\nConfidence: 100%", 1.0),
            ("A cat.\nConfidence: 0%", 0.0),
            ("A cat.\r\nCONFIDENCE: 0.85\r\n", 0.85),
            ("A cat on a sofa. Confidence: 0.9", 0.9),
        ] {
            assert!(close(conf(text), want), "{text:?} -> {:?}", conf(text));
        }
    }

    #[test]
    fn tiny_float_error_is_clamped() {
        assert_eq!(conf("x\nCONFIDENCE: 1.0000001"), Some(1.0));
        assert_eq!(conf("x\nCONFIDENCE: 100.00001%"), Some(1.0));
    }

    #[test]
    fn nonsense_values_give_none() {
        for v in [
            "high", "7", "-1", "-0.5", "NaN", "nan", "inf", "-inf", "1.5", "150%", "", "0,8",
            "7/12", "11/10", "1.5/1", "8/", "<0.8", "<0.8]", "<1.5>", "0.8abc", "- 1", "-.5",
            "1e-3", "0.8.5", ".", "%", "101%", "10",
        ] {
            let text = format!("A cat.\nCONFIDENCE: {v}");
            let p = parse_answer(&text);
            assert_eq!(p.confidence, None, "{v:?}");
            // The line is still the confidence line and leaves the description.
            assert_eq!(p.description, "A cat.", "{v:?}");
        }
    }

    #[test]
    fn template_echoes_and_named_scales_are_read() {
        for (v, want) in [
            ("<0.8>", 0.8),
            ("< 0.8 >", 0.8),
            ("[0.35]", 0.35),
            ("0.8/1", 0.8),
            ("8/10", 0.8),
            ("7/10.", 0.7),
            ("80/100", 0.8),
            ("<8/10>", 0.8),
            ("10/10", 1.0),
        ] {
            let p = parse_answer(&format!("A cat.\nConfidence: {v}"));
            assert!(close(p.confidence, want), "{v:?}: {:?}", p.confidence);
            assert_eq!(p.description, "A cat.", "{v:?}");
        }
    }

    #[test]
    fn missing_confidence() {
        let p = parse_answer("  A cat sleeps on a sofa.  ");
        assert_eq!(p.confidence, None);
        assert_eq!(p.description, "A cat sleeps on a sofa.");
        assert_eq!(parse_answer("").confidence, None);
        assert_eq!(parse_answer("").description, "");
    }

    #[test]
    fn only_the_last_three_non_empty_lines() {
        let text = "CONFIDENCE: 0.9\nline a\nline b\n\n\nline c\n";
        assert_eq!(conf(text), None);
        let text = "x\nCONFIDENCE: 0.9\nline a\n\nline b\n";
        assert!(close(conf(text), 0.9));
        // Search from the end: the last one wins.
        assert!(close(conf("a\nCONFIDENCE: 0.2\nCONFIDENCE: 0.7"), 0.7));
    }

    #[test]
    fn prose_mentions_are_not_the_confidence() {
        let p = parse_answer("A cat.\nI say with confidence: a cat.");
        assert_eq!(p.confidence, None);
        assert_eq!(p.description, "A cat.\nI say with confidence: a cat.");
        assert_eq!(conf("A cat.\nOverconfidence: 0.8"), None);
        assert_eq!(conf("A cat.\nI have high confidence."), None);
        assert_eq!(conf("A cat.\nConfidence -1"), None);
    }

    #[test]
    fn description_without_the_confidence() {
        let p = parse_answer("A cat on a sofa.\nCONFIDENCE: 0.8\n");
        assert_eq!(p.description, "A cat on a sofa.");
        let p = parse_answer("A cat on a sofa. Confidence: 0.9.");
        assert_eq!(p.description, "A cat on a sofa.");
        let p = parse_answer("A cat (confidence: 0.6) on a sofa.");
        assert_eq!(p.description, "A cat on a sofa.");
        assert!(close(p.confidence, 0.6));
        let p = parse_answer("A cat.\n\n**Confidence:** 0.8\n**");
        assert_eq!(p.description, "A cat.");
        let p = parse_answer("**A cat.** **Confidence:** 0.8");
        assert_eq!(p.description, "**A cat.**");
        let p = parse_answer("```\nA cat.\nCONFIDENCE: 0.8\n```");
        assert_eq!(p.description, "A cat.");
        let p = parse_answer("Line one.\nLine two.\n- Confidence: 70%\n\n");
        assert_eq!(p.description, "Line one.\nLine two.");
        assert!(close(p.confidence, 0.7));
        let p = parse_answer("A cat. **");
        assert_eq!(p.description, "A cat.");
    }
}
