//! Which of the teacher's candidates are instructions worth scoring. Pure.
//!
//! A weak teacher asked for system prompts may write a scene description ("A person is
//! standing on the floor, holding a wooden chair."), an empty string, the current skill
//! again, or pieces of it word for word (see [`super::overlap`]). None of these is a new
//! instruction to the student, and scoring them wastes a whole row of student calls: each
//! is rejected with its reason, shown on the upskill screen and kept in the run report.

use super::overlap::{copy_reason, words};
use crate::roles::output_contract::{instructions, OUTPUT_CONTRACT};
use std::collections::HashSet;

/// Words by which an instruction addresses the model or tells it what to do. A text with
/// none of them is not an instruction (it describes something instead).
const INSTRUCTION_CUES: &[&str] = &[
    "you", "your", "describe", "report", "list", "say", "state", "write", "mention", "name",
    "note", "count", "answer", "reply", "respond", "end", "always", "never", "don't", "do", "must",
    "should", "keep", "focus", "look", "watch", "identify", "flag", "tell", "use", "avoid",
    "include", "give", "check", "explain",
];

fn normalized(text: &str) -> String {
    words(text).join(" ")
}

/// The same instructions, case, punctuation, spacing and the output contract aside.
pub fn same_instructions(a: &str, b: &str) -> bool {
    normalized(instructions(a)) == normalized(instructions(b))
}

/// Why `candidate` is not worth scoring, or None when it is an instruction that differs
/// from the current skill (`current`, its instructions): not empty, not the current skill
/// nor a fragment or near-copy of it, not the answer format, and an instruction.
pub fn rejection(candidate: &str, current: &str) -> Option<String> {
    let w = words(candidate);
    if w.is_empty() {
        return Some("empty after sanitising".into());
    }
    if same_instructions(candidate, current) {
        return Some("repeats the current skill".into());
    }
    if let Some(why) = copy_reason(candidate, instructions(current), "the current skill") {
        return Some(why);
    }
    if let Some(why) = copy_reason(candidate, OUTPUT_CONTRACT, "the answer format") {
        return Some(why);
    }
    let cues: HashSet<&str> = INSTRUCTION_CUES.iter().copied().collect();
    if !w.iter().any(|x| cues.contains(x.as_str())) {
        return Some("not an instruction to the model (it reads like a scene description)".into());
    }
    None
}

/// Why `candidate` is not worth scoring beside the `earlier` ones kept from the same run
/// (named `candidate 1`, `candidate 2`, … in order): the same instructions, or a fragment
/// or near-copy of one of them.
pub fn rejection_among(candidate: &str, earlier: &[String]) -> Option<String> {
    earlier.iter().enumerate().find_map(|(k, e)| {
        if same_instructions(candidate, e) {
            Some("duplicate of another candidate".to_string())
        } else {
            copy_reason(candidate, e, &format!("candidate {}", k + 1))
        }
    })
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

    #[test]
    fn pieces_of_the_current_skill_are_rejected_with_their_reason() {
        let current = "You watch a room through a webcam. Describe every person, what they \
                       hold and what they do.\n\nSay plainly when something is unsafe: fire, \
                       smoke, a knife, a fall.";
        assert_eq!(
            rejection("You watch a room through a webcam.", current).as_deref(),
            Some("a fragment of the current skill (7 of its 7 words in one run of it)")
        );
        // Against the composed skill (with its contract) too.
        let composed = crate::roles::output_contract::compose(current);
        assert!(rejection(
            "Say plainly when something is unsafe: fire, smoke, a knife, a fall.",
            &composed
        )
        .unwrap()
        .starts_with("a fragment of the current skill"));
        // The answer format handed back as a skill.
        let contract_line = OUTPUT_CONTRACT.lines().nth(2).unwrap();
        assert!(rejection(contract_line, current)
            .unwrap()
            .starts_with("a fragment of the answer format"));
        // A rewrite that keeps a short phrase is a candidate.
        assert_eq!(
            rejection(
                "List each person and each object, then say plainly when something is \
                 unsafe and where it is. Keep it to three sentences.",
                current
            ),
            None
        );
    }

    #[test]
    fn earlier_candidates_are_compared_too() {
        let earlier = vec![
            "List the people first, then the objects, then anything unsafe and where.".to_string(),
            "Describe the room in two sentences; never guess what is hidden.".to_string(),
        ];
        assert_eq!(
            rejection_among("list the people first, then the objects", &earlier).as_deref(),
            Some("a fragment of candidate 1 (7 of its 7 words in one run of it)")
        );
        assert_eq!(
            rejection_among(
                "DESCRIBE the room in two sentences. Never guess what is hidden.",
                &earlier
            )
            .as_deref(),
            Some("duplicate of another candidate")
        );
        assert_eq!(
            rejection_among("Name each hazard and the person nearest to it.", &earlier),
            None
        );
    }
}
