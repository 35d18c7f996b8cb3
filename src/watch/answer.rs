//! Reading the student's watch lines (pure): `WATCH <id>: yes|no|unsure`, one per watch,
//! after the description and before the confidence line.
//!
//! As forgiving as the confidence parser: any case, markdown around the line or the word
//! (`**WATCH garage_door:** Yes.`), a bullet, `=` or `-` for the colon, `true`/`false`,
//! `y`/`n`, a value followed by words (`yes, the door is up`), and the line without the
//! word `WATCH` when it starts with a watch's id. `unsure`, `unknown`, `maybe`, `not sure`,
//! an unreadable value and a missing line are all `Unsure`: a value is never made up. A
//! line for an id that is not watched is ignored.

use serde::{Deserialize, Serialize};

/// The student's answer to one watch on one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum WatchAnswer {
    Yes,
    No,
    Unsure,
}

impl WatchAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchAnswer::Yes => "yes",
            WatchAnswer::No => "no",
            WatchAnswer::Unsure => "unsure",
        }
    }

    pub fn from_bool(b: bool) -> Self {
        if b {
            WatchAnswer::Yes
        } else {
            WatchAnswer::No
        }
    }

    /// Yes → Some(true), No → Some(false), Unsure → None.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            WatchAnswer::Yes => Some(true),
            WatchAnswer::No => Some(false),
            WatchAnswer::Unsure => None,
        }
    }
}

fn is_markup(c: char) -> bool {
    matches!(
        c,
        '*' | '_' | '`' | '#' | '>' | '-' | '•' | '[' | '(' | ')' | ']'
    )
}

/// One watch line: the id (lower case) and the value text after its separator.
fn split_line(line: &str) -> Option<(String, &str, bool)> {
    let t = line
        .trim()
        .trim_start_matches(|c: char| is_markup(c) || c.is_whitespace());
    let (rest, had_word) = match t.get(..5) {
        Some(w) if w.eq_ignore_ascii_case("watch") => {
            let after = &t[5..];
            // `WATCH:` `WATCH ` `WATCH**`; not `watchful`, `watches`.
            if after
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            {
                (t, false)
            } else {
                (after, true)
            }
        }
        _ => (t, false),
    };
    let rest = rest.trim_start_matches(|c: char| is_markup(c) || c.is_whitespace() || c == ':');
    let id_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if id_end == 0 {
        return None;
    }
    let id = rest[..id_end].trim_end_matches('_').to_ascii_lowercase();
    let after = rest[id_end..].trim_start_matches(['*', '`', '_']);
    let after = after.trim_start();
    let value = after
        .strip_prefix(':')
        .or_else(|| after.strip_prefix('='))
        .or_else(|| after.strip_prefix(" -"))
        .or_else(|| after.strip_prefix('-'))
        .or_else(|| after.strip_prefix('\u{2192}'))?;
    Some((id, value, had_word))
}

/// The answer a value text reads as.
fn read_value(v: &str) -> WatchAnswer {
    let v = v
        .trim()
        .trim_start_matches(|c: char| is_markup(c) || c.is_whitespace() || c == '"' || c == '\'')
        .to_ascii_lowercase();
    let word: String = v.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    // A template echoed back (`yes|no|unsure`, `yes/no`) answers nothing.
    if v[word.len()..].starts_with(['|', '/']) {
        return WatchAnswer::Unsure;
    }
    match word.as_str() {
        "yes" | "true" | "y" | "on" => WatchAnswer::Yes,
        // `not sure`, `no idea` are not a `no`.
        "no" | "not" if v.starts_with("not sure") || v.starts_with("not certain") => {
            WatchAnswer::Unsure
        }
        "no" if v.starts_with("no idea") => WatchAnswer::Unsure,
        "no" | "false" | "n" | "off" | "not" => WatchAnswer::No,
        _ => WatchAnswer::Unsure,
    }
}

/// Every watch line in `text`: (id, answer), in order; the word `WATCH` is required here
/// (the ids are not known).
pub fn watch_lines(text: &str) -> Vec<(String, WatchAnswer)> {
    text.lines()
        .filter_map(split_line)
        .filter(|(_, _, had_word)| *had_word)
        .map(|(id, v, _)| (id, read_value(v)))
        .collect()
}

/// The answer to each of `ids` (in their order): the last line for it, `Unsure` when there
/// is none. Lines for other ids are ignored.
pub fn parse_watch_answers(text: &str, ids: &[&str]) -> Vec<WatchAnswer> {
    let mut out = vec![WatchAnswer::Unsure; ids.len()];
    for line in text.lines() {
        let Some((id, value, had_word)) = split_line(line) else {
            continue;
        };
        let Some(i) = ids.iter().position(|w| w.eq_ignore_ascii_case(&id)) else {
            continue;
        };
        // Without the word, only a bare `garage_door: yes` counts (not prose).
        if !had_word && value.split_whitespace().count() > 3 {
            continue;
        }
        out[i] = read_value(value);
    }
    out
}

/// `text` without its `WATCH …:` lines (the description the policy, the screen and Home
/// Assistant read).
pub fn without_watch_lines(text: &str) -> String {
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !split_line(l).is_some_and(|(_, _, had_word)| had_word))
        .collect();
    let mut s = kept.join("\n");
    if text.ends_with('\n') && !s.is_empty() {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use WatchAnswer::*;

    fn one(line: &str) -> WatchAnswer {
        parse_watch_answers(line, &["garage_door"])[0]
    }

    #[test]
    fn the_contract_form_and_its_variants() {
        for (line, want) in [
            ("WATCH garage_door: yes", Yes),
            ("WATCH garage_door: no", No),
            ("WATCH garage_door: unsure", Unsure),
            ("watch garage_door: Yes.", Yes),
            ("Watch garage_door: NO.", No),
            ("**WATCH garage_door:** yes", Yes),
            ("- WATCH garage_door: yes", Yes),
            ("WATCH: garage_door: yes", Yes),
            ("WATCH garage_door = true", Yes),
            ("WATCH garage_door - false", No),
            ("WATCH `garage_door`: yes", Yes),
            ("WATCH GARAGE_DOOR: yes", Yes),
            ("WATCH garage_door: yes, the door is up", Yes),
            ("WATCH garage_door: \"no\"", No),
            ("WATCH garage_door: not sure", Unsure),
            ("WATCH garage_door: unknown", Unsure),
            ("WATCH garage_door: maybe", Unsure),
            ("WATCH garage_door: yes|no|unsure", Unsure),
            ("WATCH garage_door: yes/no", Unsure),
            ("WATCH garage_door:", Unsure),
            ("WATCH garage_door: 0.8", Unsure),
            // Without the word, a bare line for the id.
            ("garage_door: yes", Yes),
            // A missing line.
            ("A garage with a car.", Unsure),
            // Prose that names the id is not an answer.
            (
                "garage_door: it looks like the door might be open a bit",
                Unsure,
            ),
        ] {
            assert_eq!(one(line), want, "{line:?}");
        }
    }

    #[test]
    fn lines_go_to_their_watch_and_unknown_ones_are_ignored() {
        let answer = "A garage; the door is up.\nNo safety concerns.\nWATCH garage_door: yes\n\
                      WATCH stove_on: no\nWATCH cat_inside: yes\nCONFIDENCE: 0.8";
        assert_eq!(
            parse_watch_answers(answer, &["stove_on", "garage_door", "printer"]),
            vec![No, Yes, Unsure]
        );
        // The last line for a watch counts.
        assert_eq!(
            parse_watch_answers(
                "WATCH garage_door: no\nWATCH garage_door: yes",
                &["garage_door"]
            ),
            vec![Yes]
        );
        assert_eq!(watch_lines(answer).len(), 3);
    }

    #[test]
    fn watch_lines_come_off_the_description() {
        let answer = "A garage.\n**WATCH garage_door:** yes\nWatchful cat.\nCONFIDENCE: 0.8\n";
        assert_eq!(
            without_watch_lines(answer),
            "A garage.\nWatchful cat.\nCONFIDENCE: 0.8\n"
        );
        assert_eq!(without_watch_lines("We watch TV."), "We watch TV.");
        // The confidence is found again when watch lines follow it.
        let after = "A garage.\nCONFIDENCE: 0.7\nWATCH a: yes\nWATCH b: no\nWATCH c: no";
        let parsed = crate::reading::confidence::parse_answer(&without_watch_lines(after));
        assert_eq!(parsed.confidence, Some(0.7));
        assert_eq!(parsed.description, "A garage.");
    }
}
