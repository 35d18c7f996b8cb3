//! The output contract: the fixed end of every student system prompt.
//!
//! A skill has two parts. The instructions (`skills/skill.txt`) say what to look at and how
//! to describe it; upskill may rewrite them. The contract says what the answer must end
//! with, the format the confidence parser and the policy rely on (the `Safety:` sentence or
//! `No safety concerns.`, and the `CONFIDENCE:` last line). The program appends it to
//! every skill, in the spirit of a DSPy signature, so no candidate a teacher writes can
//! break the parser.

/// Appended to every skill's instructions.
pub const OUTPUT_CONTRACT: &str = "Answer format (always, whatever the instructions above say):\n\
- If something is unsafe, say what and where in one sentence starting with \"Safety:\". If nothing is unsafe, write exactly: No safety concerns.\n\
- End with one last line: the word CONFIDENCE, a colon and one decimal number between 0.0 and 1.0, for example CONFIDENCE: 0.35 or CONFIDENCE: 0.9. The number must reflect how sure you really are: high (0.8 or more) only when the frame is clear and the scene unambiguous, low (0.4 or less) when it is blurry, dark, partly hidden or hard to recognise.";

/// The line that separates the two parts where both are shown to a person.
pub const DIVIDER: &str = "--- output contract (fixed, appended by the program) ---";

/// The system prompt the student gets: the instructions, then the contract. Instructions
/// that already end with the contract (a skill saved with it) do not get it twice.
pub fn compose(instructions: &str) -> String {
    let instructions = instructions.trim_end();
    if instructions.ends_with(OUTPUT_CONTRACT) {
        return instructions.to_string();
    }
    format!("{instructions}\n\n{OUTPUT_CONTRACT}")
}

/// The instructions of a composed prompt (the contract taken off when present).
pub fn instructions(prompt: &str) -> &str {
    prompt
        .trim_end()
        .strip_suffix(OUTPUT_CONTRACT)
        .map(str::trim_end)
        .unwrap_or(prompt)
}

/// Both parts for a person to read: the instructions, the divider, the contract.
pub fn display(instructions: &str) -> String {
    format!(
        "{}\n\n{DIVIDER}\n{OUTPUT_CONTRACT}",
        self::instructions(instructions).trim_end()
    )
}

/// The line the contract asks for when nothing is unsafe.
pub const NO_SAFETY_CONCERNS: &str = "No safety concerns.";

/// An answer as a person reads it where confidence has its own place (a Home Assistant
/// sensor, the fleet console's column): without the contract's lines — the `CONFIDENCE:`
/// line and a bare `No safety concerns.` — trimmed. A `Safety:` sentence stays: it is the
/// answer's most important part.
pub fn without_contract_lines(answer: &str) -> String {
    let description = crate::reading::confidence::parse_answer(answer).description;
    description
        .lines()
        .filter(|l| {
            let t = l.trim().trim_matches(|c| matches!(c, '*' | '_' | '`'));
            !t.eq_ignore_ascii_case(NO_SAFETY_CONCERNS)
                && !t.eq_ignore_ascii_case(NO_SAFETY_CONCERNS.trim_end_matches('.'))
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_lines_come_off_the_answer() {
        let a = "A pan on the stove.\nSafety: smoke rises from the pan.\nCONFIDENCE: 0.90";
        assert_eq!(
            without_contract_lines(a),
            "A pan on the stove.\nSafety: smoke rises from the pan."
        );
        let b = "A desk with a lamp.\nNo safety concerns.\nCONFIDENCE: 0.8\n";
        assert_eq!(without_contract_lines(b), "A desk with a lamp.");
        // On one line with the description, the confidence still comes off.
        assert_eq!(
            without_contract_lines("A cat on a sofa. CONFIDENCE: 0.35"),
            "A cat on a sofa."
        );
        // Text that only mentions the words stays.
        let c = "A sign reading no safety concerns here.";
        assert_eq!(without_contract_lines(c), c);
    }
    use crate::reading::confidence::parse_answer;

    #[test]
    fn compose_appends_the_contract_once() {
        let p = compose("Describe the room.\n");
        assert!(p.starts_with("Describe the room.\n\n"));
        assert!(p.ends_with(OUTPUT_CONTRACT));
        assert_eq!(compose(&p), p, "not twice");
        assert_eq!(instructions(&p), "Describe the room.");
        assert_eq!(instructions("Only instructions."), "Only instructions.");
    }

    #[test]
    fn the_contract_asks_for_what_the_parser_reads() {
        // Its own example line parses: the format it asks for is the one we read.
        let example = "A cat on a sofa.\nNo safety concerns.\nCONFIDENCE: 0.35";
        assert_eq!(parse_answer(example).confidence, Some(0.35));
        assert!(OUTPUT_CONTRACT.contains("CONFIDENCE: 0.35"));
        assert!(OUTPUT_CONTRACT.contains(NO_SAFETY_CONCERNS));
        assert!(OUTPUT_CONTRACT.contains("\"Safety:\""));
        // No template for a model to echo back.
        assert!(!OUTPUT_CONTRACT.contains('<'));
    }

    #[test]
    fn display_shows_both_parts() {
        let d = display("Look closely.");
        assert!(d.starts_with("Look closely.\n\n--- output contract"));
        assert!(d.ends_with(OUTPUT_CONTRACT));
    }
}
