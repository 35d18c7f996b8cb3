//! What the teacher is asked to write: N candidate skills that target the current
//! skill's real failures on the train cases, the ones that matter most first: answers
//! without the confidence line (every such live frame escalates), then answers that were
//! wrong while stating a high confidence (the policy escalates on low confidence, so these
//! reach no one), then the rest.

use crate::eval::cases::{Case, CaseInput};
use crate::eval::runner::{CaseResult, FormatShare};
use crate::model::{ChatRequest, Sampling};

/// The reply format: an object holding the array (`format: "json"` never yields a bare array).
pub fn candidates_schema(n: usize) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "prompts": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": n
            }
        },
        "required": ["prompts"]
    })
}

/// Why a case failed, in words the teacher can act on.
pub fn failure_note(case: &Case, r: &CaseResult) -> Option<String> {
    let mut why = Vec::new();
    if let Some(e) = &r.error {
        why.push(format!("the call failed ({e})"));
    }
    if !r.score.missed.is_empty() {
        why.push(format!("did not mention: {}", r.score.missed.join(", ")));
    }
    if !r.score.forbidden.is_empty() {
        why.push(format!(
            "wrongly mentioned: {}",
            r.score.forbidden.join(", ")
        ));
    }
    if !r.score.safety_ok {
        why.push(if case.expectation.safety {
            "did not flag the safety-relevant activity".to_string()
        } else {
            "raised a false safety alarm".to_string()
        });
    }
    if !r.score.format_ok && r.error.is_none() {
        why.push("no parseable CONFIDENCE line at the end".into());
    }
    for w in r.score.watches.iter().filter(|w| !w.ok) {
        why.push(format!(
            "answered WATCH {}: {} where the right answer is {}",
            w.id,
            w.answered.as_str(),
            if w.expected { "yes" } else { "no" }
        ));
    }
    if r.score.overconfident() {
        if let Some(c) = crate::reading::confidence::parse_answer(&r.answer).confidence {
            why.push(format!("yet it stated CONFIDENCE: {c}"));
        }
    }
    if why.is_empty() {
        return None;
    }
    let scene = match &case.input {
        CaseInput::Text(t) => format!("scene \"{t}\""),
        CaseInput::Image(p) => format!(
            "photo {}",
            p.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
    };
    Some(format!("- {} ({scene}): {}", case.id, why.join("; ")))
}

/// Which group a failed case is listed under, most important first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    /// Answered, but no readable confidence line.
    Format,
    /// Failed the case while stating a high confidence.
    ConfidentAndWrong,
    Other,
}

fn group(r: &CaseResult) -> Group {
    if r.error.is_none() && !r.score.format_ok {
        Group::Format
    } else if r.score.overconfident() {
        Group::ConfidentAndWrong
    } else {
        Group::Other
    }
}

/// The failures block of the brief: the train cases the current skill failed, grouped and
/// ordered by what matters most to the live policy (format failures, then confident and
/// wrong, then the rest), each group under a heading that says why it matters. Empty when
/// it failed none.
pub fn failures_brief(train: &[(&Case, &CaseResult)]) -> String {
    let format = FormatShare::of_results(train.iter().map(|(_, r)| *r));
    let mut notes: Vec<(Group, String)> = train
        .iter()
        .filter_map(|(c, r)| failure_note(c, r).map(|n| (group(r), n)))
        .collect();
    // Stable: file order within a group.
    notes.sort_by_key(|(g, _)| *g);
    let mut out = String::new();
    let mut last = None;
    for (g, note) in notes {
        if last != Some(g) {
            let heading = match g {
                Group::Format => format!(
                    "{} — answers that did not end with the CONFIDENCE line ({} of {} train \
                     answers did). Fix this first: the program cannot read a confidence \
                     without that last line, and every live frame without it is escalated:",
                    if format.mostly_failed() {
                        "MOST IMPORTANT"
                    } else {
                        "First"
                    },
                    format.ok,
                    format.of
                ),
                Group::ConfidentAndWrong => format!(
                    "Wrong while stating a confidence above {:.1} — the worst failures: only \
                     low confidence is escalated, so nobody checks these. The instructions \
                     must make it say how sure it really is:",
                    crate::eval::score::CONFIDENT_ABOVE
                ),
                Group::Other => "Other failures:".to_string(),
            };
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&heading);
            out.push('\n');
            last = Some(g);
        }
        out.push_str(&note);
        out.push('\n');
    }
    out.trim_end().to_string()
}

/// The teacher request for `n` candidate prompts. `failures` is [`failures_brief`];
/// `rejected` are (candidate, why) from an earlier ask of this run, so the teacher is told
/// what not to write again.
pub fn candidates_request(
    n: usize,
    current_skill: &str,
    baseline_train: f64,
    failures: &str,
    rejected: &[(String, String)],
    max_chars: usize,
) -> ChatRequest {
    candidates_request_watching(
        n,
        current_skill,
        baseline_train,
        failures,
        rejected,
        max_chars,
        &[],
    )
}

/// [`candidates_request`] for a device with watches: the teacher sees the watch part of
/// the answer format (their questions quoted) and is told a candidate must keep every
/// watch answered right (their failures are among `failures`).
pub fn candidates_request_watching(
    n: usize,
    current_skill: &str,
    baseline_train: f64,
    failures: &str,
    rejected: &[(String, String)],
    max_chars: usize,
    watches: &[crate::watch::WatchSpec],
) -> ChatRequest {
    let contract = crate::roles::output_contract::with_watches(
        crate::roles::output_contract::OUTPUT_CONTRACT,
        watches,
    );
    let watch_rule = if watches.is_empty() {
        ""
    } else {
        " The WATCH lines are scored on their own: a version that describes better but \
         answers a watch worse than now is rejected."
    };
    let failures = if failures.trim().is_empty() {
        "(none: it passed every train case; aim for the same with clearer, shorter instructions)"
            .to_string()
    } else {
        failures.to_string()
    };
    let rejected = if rejected.is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = rejected
            .iter()
            .map(|(p, why)| {
                format!(
                    "- \"{}\": {why}",
                    crate::reading::sanitize::for_screen(p, 160)
                )
            })
            .collect();
        format!(
            "Your earlier candidates were rejected and not scored:\n{}\nDo not copy \
             sentences of the current instructions or of each other: write new \
             instructions in your own words.\n\n",
            lines.join("\n")
        )
    };
    let user = format!(
        "A small vision model on a Raspberry Pi watches a room through a webcam. For each frame \
         it gets a system prompt and must describe the people, the objects and any \
         safety-relevant activity. The system prompt has two parts: the instructions (its \
         \"skill\", which you will rewrite) and a fixed answer format that the program \
         always appends after them:\n<<<\n{contract}\n>>>\n\n\
         Current instructions (score {:.2} of 1.00 on the train cases):\n<<<\n{current_skill}\n>>>\n\n\
         Train cases it failed, and why (most important first):\n{failures}\n\n\
         {rejected}Write {n} different improved versions of the instructions that fix these failures \
         without breaking what works.{watch_rule} Each is a system prompt addressed to the small model \
         (\"You …\", \"Describe …\"), at most {max_chars} characters, plain text. Do not \
         describe a scene yourself, do not repeat the answer format (it is appended anyway), \
         do not hand back a piece of the current instructions (a sentence or a paragraph of \
         them is not a new version) and do not mention the test cases. \
         Reply as JSON: {{\"prompts\": [\"...\", \"...\"]}}",
        baseline_train,
    );
    ChatRequest {
        system: Some(
            "You are an expert prompt engineer for small vision-language models. Reply with JSON only."
                .into(),
        ),
        user,
        images: vec![],
        format: Some(candidates_schema(n)),
        stream: false,
        sampling: Sampling {
            // Room for n prompts of up to max_chars each (~3 characters a token) and the
            // JSON around them, whatever the teacher's own cap for a verdict is.
            max_tokens: Some(((n * max_chars) / 3 + 256).min(32_768) as u32),
            ..Sampling::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::cases::Split;
    use crate::eval::score::score_answer;
    use crate::eval::Expectation;

    fn case(id: &str, expect: &str, safety: bool) -> Case {
        Case {
            id: id.into(),
            input: CaseInput::Text(format!("a scene with a {expect}")),
            prompt: None,
            expectation: Expectation {
                expect: vec![vec![expect.into()]],
                forbid: vec![],
                safety,
                watch: Default::default(),
            },
            split: Split::Train,
            weight: 1.0,
            file: std::path::PathBuf::new(),
            watches: vec![],
        }
    }

    fn result(c: &Case, answer: &str) -> CaseResult {
        let terms: Vec<String> = crate::config::DEFAULT_SAFETY_KEYWORDS
            .iter()
            .map(|s| s.to_string())
            .collect();
        CaseResult {
            case_id: c.id.clone(),
            split: c.split,
            weight: c.weight,
            answer: answer.into(),
            score: score_answer(answer, &c.expectation, &terms),
            error: None,
        }
    }

    /// Cases in file order: a plain miss, a confident miss, a missing confidence line, a
    /// pass. The brief lists the format failure first, then the confident miss, then the
    /// plain miss, and leaves the pass out.
    #[test]
    fn format_failures_first_then_confident_and_wrong_then_the_rest() {
        let cases = [
            case("plain-miss", "cat", false),
            case("sure-but-wrong", "smoke", true),
            case("no-line", "dog", false),
            case("pass", "lamp", false),
        ];
        let results = [
            result(&cases[0], "A room. No safety concerns.\nCONFIDENCE: 0.3"),
            result(
                &cases[1],
                "An empty kitchen. No safety concerns.\nCONFIDENCE: 0.95",
            ),
            result(&cases[2], "A dog on a rug. No safety concerns."),
            result(&cases[3], "A lamp. No safety concerns.\nCONFIDENCE: 0.8"),
        ];
        let pairs: Vec<(&Case, &CaseResult)> = cases.iter().zip(&results).collect();
        let brief = failures_brief(&pairs);
        let at = |needle: &str| {
            brief
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} in:\n{brief}"))
        };
        assert!(at("no-line") < at("sure-but-wrong"), "{brief}");
        assert!(at("sure-but-wrong") < at("plain-miss"), "{brief}");
        assert!(!brief.contains("- pass"), "{brief}");
        assert!(brief.starts_with("First — answers that did not end with the CONFIDENCE line (3 of 4 train answers did)"), "{brief}");
        assert!(
            brief.contains("Wrong while stating a confidence above 0.5"),
            "{brief}"
        );
        assert!(
            brief.contains("- sure-but-wrong (scene \"a scene with a smoke\"): did not mention: smoke; did not flag the safety-relevant activity; yet it stated CONFIDENCE: 0.95"),
            "{brief}"
        );
        assert!(brief.contains("Other failures:\n- plain-miss"), "{brief}");
    }

    #[test]
    fn most_answers_without_the_line_is_said_most_important() {
        let cases = [case("a", "cat", false), case("b", "dog", false)];
        let results = [
            result(&cases[0], "A cat."),
            result(&cases[1], "A dog. CONFIDENCE high"),
        ];
        let pairs: Vec<(&Case, &CaseResult)> = cases.iter().zip(&results).collect();
        let brief = failures_brief(&pairs);
        assert!(
            brief.starts_with("MOST IMPORTANT — answers that did not end with the CONFIDENCE line (0 of 2 train answers did)"),
            "{brief}"
        );
    }

    #[test]
    fn the_teacher_is_told_the_watches_and_their_failures() {
        let mut c = case("door", "garage", false);
        c.expectation.watch.insert("garage_door".into(), true);
        let r = result(&c, "A garage.\nWATCH garage_door: no\nCONFIDENCE: 0.4");
        let note = failure_note(&c, &r).unwrap();
        assert!(
            note.contains("answered WATCH garage_door: no where the right answer is yes"),
            "{note}"
        );
        let w = [crate::watch::WatchSpec::new(
            "garage_door",
            "Is the garage door open?",
        )];
        let req = candidates_request_watching(2, "You watch.", 0.5, &note, &[], 600, &w);
        assert!(
            req.user
                .contains("- garage_door: \"Is the garage door open?\""),
            "{}",
            req.user
        );
        assert!(
            req.user
                .contains("answers a watch worse than now is rejected"),
            "{}",
            req.user
        );
        assert!(
            req.user.contains("answered WATCH garage_door: no"),
            "{}",
            req.user
        );
        // Without watches the brief says nothing of them.
        let plain = candidates_request(2, "You watch.", 0.5, "", &[], 600);
        assert!(!plain.user.contains("WATCH"), "{}", plain.user);
    }

    #[test]
    fn rejected_candidates_are_named_in_the_next_ask() {
        let req = candidates_request(
            2,
            "You watch a room.",
            0.4,
            "",
            &[(
                "You watch a room.".into(),
                "a fragment of the current skill (4 of its 4 words in one run of it)".into(),
            )],
            600,
        );
        assert!(req.user.contains(
            "Your earlier candidates were rejected and not scored:\n- \"You watch a room.\": a fragment of the current skill"
        ), "{}", req.user);
        assert!(req.user.contains("Write 2 different"));
        let first = candidates_request(2, "You watch a room.", 0.4, "", &[], 600);
        assert!(!first.user.contains("rejected"), "{}", first.user);
    }
}
