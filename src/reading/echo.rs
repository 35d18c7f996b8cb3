//! Prompt echoes: a small model often repeats runs of its own system prompt (the skill's
//! list of hazards, its rules) instead of describing the frame. Words it echoes are not
//! an observation, so they must not count as safety keywords, and the echo itself is a
//! reason to ask the teacher.

use std::collections::HashSet;
use std::ops::Range;

/// A run of at least this many consecutive words shared with the prompt is an echo.
/// Six words rarely repeat by chance ("a person who has fallen or" does not appear in a
/// description written for the frame), while the skill's lists and rules are longer.
pub const ECHO_WORDS: usize = 6;

/// Words of `text` with their byte ranges: letters and digits (and inner apostrophes),
/// lowercased.
fn words(text: &str) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        let inside = c.is_alphanumeric() || (c == '\'' && start.is_some());
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((text[s..i].to_lowercase(), s..i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((text[s..].to_lowercase(), s..text.len()));
    }
    out
}

fn key(ws: &[(String, Range<usize>)]) -> String {
    ws.iter()
        .map(|(w, _)| w.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Byte ranges of `answer` that repeat a run of at least [`ECHO_WORDS`] consecutive words
/// of `prompt` (case and punctuation ignored), merged and in order.
pub fn echoed_spans(answer: &str, prompt: &str) -> Vec<Range<usize>> {
    let pw = words(prompt);
    let aw = words(answer);
    if pw.len() < ECHO_WORDS || aw.len() < ECHO_WORDS {
        return Vec::new();
    }
    let grams: HashSet<String> = pw.windows(ECHO_WORDS).map(key).collect();
    let mut echoed = vec![false; aw.len()];
    for (i, w) in aw.windows(ECHO_WORDS).enumerate() {
        if grams.contains(&key(w)) {
            echoed[i..i + ECHO_WORDS].iter_mut().for_each(|e| *e = true);
        }
    }
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (i, (_, r)) in aw.iter().enumerate() {
        if !echoed[i] {
            continue;
        }
        match spans.last_mut() {
            Some(last) if i > 0 && echoed[i - 1] => last.end = r.end,
            _ => spans.push(r.clone()),
        }
    }
    spans
}

/// The answer with each echoed span replaced by a clause break, so what is left reads as
/// the model's own words (and a negation cannot reach across a removed span).
pub fn without_spans(answer: &str, spans: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(answer.len());
    let mut at = 0;
    for r in spans {
        out.push_str(&answer[at..r.start]);
        out.push_str(" . ");
        at = r.end;
    }
    out.push_str(&answer[at..]);
    out
}

/// What of a streamed answer can already be judged: `settled` is the byte offset up to
/// which no word can still turn out to be part of an echo (a later word may complete a
/// run of [`ECHO_WORDS`] only with the last `ECHO_WORDS - 1` words), and `text` is the
/// model's own words up to there (echoes replaced as by [`without_spans`]). With no
/// prompt, everything is settled.
pub struct Settled {
    pub settled: usize,
    pub text: String,
}

/// See [`Settled`]: `answer` holds complete words only.
pub fn settled_own_words(answer: &str, prompt: &str) -> Settled {
    if prompt.trim().is_empty() {
        return Settled {
            settled: answer.len(),
            text: answer.to_string(),
        };
    }
    let aw = words(answer);
    let settled = match aw.len().checked_sub(ECHO_WORDS - 1) {
        Some(n) if n > 0 => aw[n - 1].1.end,
        _ => 0,
    };
    let spans = echoed_spans(answer, prompt);
    let spans: Vec<Range<usize>> = spans
        .into_iter()
        .filter(|r| r.start < settled)
        .map(|r| r.start..r.end.min(settled))
        .collect();
    Settled {
        settled,
        text: without_spans(&answer[..settled], &spans),
    }
}

/// Words of `answer` inside the echoed spans.
pub fn echoed_word_count(answer: &str, spans: &[Range<usize>]) -> usize {
    spans.iter().map(|r| words(&answer[r.clone()]).len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKILL: &str = "Safety-relevant activity: fire, flame, smoke, a person who has fallen \
        or is not moving, someone climbing without support.\nAlways end with one last line.";

    #[test]
    fn a_repeated_hazard_list_is_an_echo() {
        let answer = "The room. Fire, flame, smoke, a person who has fallen or is not moving.\nCONFIDENCE: 0.8";
        let spans = echoed_spans(answer, SKILL);
        assert_eq!(spans.len(), 1);
        assert_eq!(
            &answer[spans[0].clone()],
            "Fire, flame, smoke, a person who has fallen or is not moving"
        );
        assert_eq!(echoed_word_count(answer, &spans), 12);
        let rest = without_spans(answer, &spans);
        assert!(!rest.to_lowercase().contains("smoke"), "{rest}");
        assert!(rest.starts_with("The room."));
    }

    #[test]
    fn an_own_description_is_not_an_echo() {
        for answer in [
            "A person is standing next to the stove; smoke rises from a pan.",
            "Smoke near a person who is cooking.",
            "No safety concerns.\nCONFIDENCE: 0.9",
        ] {
            assert!(echoed_spans(answer, SKILL).is_empty(), "{answer}");
        }
    }

    #[test]
    fn five_shared_words_are_not_enough_six_are() {
        let prompt = "one two three four five six seven";
        assert!(echoed_spans("x one two three four five y", prompt).is_empty());
        let s = echoed_spans("x one two three four five six y", prompt);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn case_and_punctuation_do_not_hide_an_echo() {
        let answer = "FIRE; FLAME; SMOKE -- A PERSON WHO HAS fallen!";
        assert_eq!(echoed_spans(answer, SKILL).len(), 1);
    }

    #[test]
    fn two_separate_echoes_are_two_spans() {
        let answer =
            "fire flame smoke a person who has. Then a cat. Always end with one last line.";
        let spans = echoed_spans(answer, SKILL);
        assert_eq!(spans.len(), 2, "{spans:?}");
    }
}
