//! Which of the teacher's candidates are instructions worth scoring. Pure.
//!
//! A weak teacher asked for system prompts may write a scene description ("A person is
//! standing on the floor, holding a wooden chair."), an empty string, or the current skill
//! again. None of these is an instruction to the student, and scoring them wastes a whole
//! row of student calls: each is rejected with its reason, shown on the upskill screen and
//! kept in the run report.

use std::collections::HashSet;

/// Words by which an instruction addresses the model or tells it what to do. A text with
/// none of them is not an instruction (it describes something instead).
const INSTRUCTION_CUES: &[&str] = &[
    "you", "your", "describe", "report", "list", "say", "state", "write", "mention", "name",
    "note", "count", "answer", "reply", "respond", "end", "always", "never", "don't", "do", "must",
    "should", "keep", "focus", "look", "watch", "identify", "flag", "tell", "use", "avoid",
    "include", "give", "check", "explain",
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

fn normalized(text: &str) -> String {
    words(text).join(" ")
}

/// The same instructions, case, punctuation, spacing and the output contract aside.
pub fn same_instructions(a: &str, b: &str) -> bool {
    normalized(crate::roles::output_contract::instructions(a))
        == normalized(crate::roles::output_contract::instructions(b))
}

/// Why `candidate` is not worth scoring, or None when it is an instruction that differs
/// from the current skill (`current`, its instructions).
pub fn rejection(candidate: &str, current: &str) -> Option<String> {
    let w = words(candidate);
    if w.is_empty() {
        return Some("empty after sanitising".into());
    }
    if same_instructions(candidate, current) {
        return Some("repeats the current skill".into());
    }
    let cues: HashSet<&str> = INSTRUCTION_CUES.iter().copied().collect();
    if !w.iter().any(|x| cues.contains(x.as_str())) {
        return Some("not an instruction to the model (it reads like a scene description)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = "You watch a room. Describe people and objects.";

    #[test]
    fn instructions_pass() {
        for c in [
            "Describe every person and what they hold.",
            "You are a careful observer. Mention smoke plainly.",
            "List the people, then the objects; never guess.",
        ] {
            assert_eq!(rejection(c, CURRENT), None, "{c}");
        }
    }

    #[test]
    fn a_scene_description_is_rejected() {
        let r = rejection(
            "A person is standing on the floor, holding a wooden chair. The room is bright.",
            CURRENT,
        );
        assert_eq!(
            r.as_deref(),
            Some("not an instruction to the model (it reads like a scene description)")
        );
    }

    #[test]
    fn empty_and_repeats_are_rejected() {
        assert_eq!(
            rejection("  ... ", CURRENT).as_deref(),
            Some("empty after sanitising")
        );
        assert_eq!(
            rejection("you WATCH a room.\n\nDescribe people, and objects", CURRENT).as_deref(),
            Some("repeats the current skill")
        );
        // The current skill given with its contract is still the same skill.
        let composed = crate::roles::output_contract::compose(CURRENT);
        assert_eq!(
            rejection(CURRENT, &composed).as_deref(),
            Some("repeats the current skill")
        );
    }
}
