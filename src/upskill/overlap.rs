//! Whether a candidate is mostly another text's words in order: a fragment of the current
//! skill (its first sentence, its second paragraph) or a near-copy of it or of an earlier
//! candidate. Pure.
//!
//! A small teacher asked to rewrite the instructions readily hands back pieces of them word
//! for word. Such a "candidate" scores like the current skill (it is the current skill, or
//! less of it) and costs a whole row of student calls. The measure is the longest run of
//! words the candidate shares with the other text, in order and unbroken, as a share of
//! the candidate's words: case, punctuation and spacing aside.

/// From this share of a candidate's words in one run of the other text on, it is a copy.
pub const COPY_SHARE: f64 = 0.8;

/// How much of a candidate lies in one run of another text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlap {
    /// Words of the longest run both share, in order.
    pub run: usize,
    /// Words of the candidate.
    pub candidate_words: usize,
    /// Words of the other text.
    pub other_words: usize,
}

impl Overlap {
    /// The run as a share of the candidate's words (0 for an empty candidate).
    pub fn share(&self) -> f64 {
        if self.candidate_words == 0 {
            0.0
        } else {
            self.run as f64 / self.candidate_words as f64
        }
    }

    /// At least [`COPY_SHARE`] of the candidate's words in one run of the other text.
    pub fn is_copy(&self) -> bool {
        self.candidate_words > 0 && self.share() >= COPY_SHARE
    }

    /// The whole candidate is in the other text and is shorter than it: a piece of it.
    pub fn is_fragment(&self) -> bool {
        self.run == self.candidate_words && self.candidate_words < self.other_words
    }
}

/// Lower-case words (letters, digits, apostrophes); everything else separates them.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// The longest run of words `candidate` and `other` share, in order and unbroken.
pub fn overlap(candidate: &str, other: &str) -> Overlap {
    let a = words(candidate);
    let b = words(other);
    // Longest common substring over words: O(|a|·|b|) time, O(|b|) memory.
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    let mut best = 0;
    for x in &a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y { prev[j] + 1 } else { 0 };
            best = best.max(cur[j + 1]);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Overlap {
        run: best,
        candidate_words: a.len(),
        other_words: b.len(),
    }
}

/// Why `candidate` is a copy of `other` (named `whose`: "the current skill",
/// "candidate 1"), or None when it is its own text.
pub fn copy_reason(candidate: &str, other: &str, whose: &str) -> Option<String> {
    let o = overlap(candidate, other);
    if !o.is_copy() {
        return None;
    }
    let kind = if o.is_fragment() {
        "a fragment of"
    } else {
        "a near-copy of"
    };
    Some(format!(
        "{kind} {whose} ({} of its {} words in one run of it)",
        o.run, o.candidate_words
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKILL: &str = "You watch a room through a webcam. Describe the people, what they \
                         hold and what they do.\n\nMention anything unsafe plainly: fire, \
                         smoke, knives, falls. Do not guess what you cannot see.";

    #[test]
    fn the_first_sentence_is_a_fragment() {
        let r = copy_reason(
            "You watch a room through a webcam.",
            SKILL,
            "the current skill",
        );
        assert_eq!(
            r.as_deref(),
            Some("a fragment of the current skill (7 of its 7 words in one run of it)")
        );
    }

    #[test]
    fn the_second_paragraph_with_other_case_and_spacing_is_a_fragment() {
        let p = "mention anything unsafe plainly -- fire, smoke,   knives, falls.\ndo not guess \
                 what you cannot see";
        let o = overlap(p, SKILL);
        assert_eq!(o.run, o.candidate_words);
        assert!(o.is_copy() && o.is_fragment(), "{o:?}");
    }

    #[test]
    fn the_whole_skill_with_a_few_words_added_is_a_near_copy() {
        let c = format!("{SKILL} Be brief.");
        let o = overlap(&c, SKILL);
        assert!(o.is_copy() && !o.is_fragment(), "{o:?}");
        assert!(copy_reason(&c, SKILL, "candidate 1")
            .unwrap()
            .starts_with("a near-copy of candidate 1 ("));
    }

    #[test]
    fn the_threshold_is_eighty_percent_of_the_candidates_words() {
        // 8 of 10 words in one run: a copy; 7 of 10: its own text.
        let other = "one two three four five six seven eight nine ten";
        let eight = "one two three four five six seven eight alpha beta";
        let seven = "one two three four five six seven alpha beta gamma";
        assert!((overlap(eight, other).share() - 0.8).abs() < 1e-12);
        assert!(overlap(eight, other).is_copy());
        assert!(!overlap(seven, other).is_copy());
    }

    #[test]
    fn the_same_words_out_of_order_or_interleaved_are_not_one_run() {
        // Every word is the skill's, but no long run of them: a rewrite, not a copy.
        let reordered = "Describe what they hold and do. You watch the people in a room. \
                         Mention fire, smoke, knives and falls plainly.";
        let o = overlap(reordered, SKILL);
        assert!(!o.is_copy(), "{o:?}");
        assert_eq!(copy_reason(reordered, SKILL, "the current skill"), None);
    }

    #[test]
    fn a_rewrite_sharing_a_phrase_passes() {
        let c = "List every person and object you see, then say plainly whether anything is \
                 unsafe. Do not guess what you cannot see.";
        let o = overlap(c, SKILL);
        assert_eq!(
            o.run, 7,
            "the shared phrase: do not guess what you cannot see"
        );
        assert!(!o.is_copy());
    }

    #[test]
    fn empty_texts_are_not_copies() {
        assert!(!overlap("", SKILL).is_copy());
        assert!(!overlap("...", SKILL).is_copy());
        assert!(!overlap("Describe the room.", "").is_copy());
        assert_eq!(overlap("", "").share(), 0.0);
    }
}
