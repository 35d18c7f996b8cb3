//! Scoring one answer against one case. Pure; every part is reported, not just the total.

use super::Expectation;
use serde::{Deserialize, Serialize};

/// How one answer did on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseScore {
    /// Share of `expect` groups mentioned, 0..1 (1.0 when the case expects nothing).
    pub expect_share: f64,
    /// The groups not mentioned (first synonym of each).
    pub missed: Vec<String>,
    /// `forbid` words the answer mentioned (affirmed, not negated).
    pub forbidden: Vec<String>,
    /// Did the answer flag safety-relevant activity?
    pub flagged_safety: bool,
    /// Does that match the case's `safety`?
    pub safety_ok: bool,
    /// Was there a parseable CONFIDENCE line?
    pub format_ok: bool,
    /// Taken off for stating a high confidence on a case the answer fails (see
    /// [`calibration_penalty`]); 0 when the answer passes or said it was unsure.
    #[serde(default)]
    pub calibration_penalty: f64,
    /// Combined, 0..1.
    pub total: f64,
    /// The case's watches: what the answer said against what is right (scored beside the
    /// description, not in `total`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watches: Vec<WatchScore>,
}

/// One watch on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchScore {
    pub id: String,
    pub expected: bool,
    /// `yes`, `no` or `unsure` (a missing line is unsure, and wrong).
    pub answered: crate::watch::WatchAnswer,
    pub ok: bool,
}

/// How often a watch was answered right across cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WatchAccuracy {
    pub right: usize,
    pub of: usize,
}

impl WatchAccuracy {
    pub fn share(&self) -> f64 {
        if self.of == 0 {
            1.0
        } else {
            self.right as f64 / self.of as f64
        }
    }
}

/// Each watch's accuracy over `scores` (the cases that name it).
pub fn watch_accuracy<'a>(
    scores: impl IntoIterator<Item = &'a CaseScore>,
) -> std::collections::BTreeMap<String, WatchAccuracy> {
    let mut m = std::collections::BTreeMap::<String, WatchAccuracy>::new();
    for s in scores {
        for w in &s.watches {
            let e = m.entry(w.id.clone()).or_default();
            e.of += 1;
            e.right += usize::from(w.ok);
        }
    }
    m
}

/// The case's watches as the answer says them.
pub fn score_watches(
    answer: &str,
    expected: &std::collections::BTreeMap<String, bool>,
) -> Vec<WatchScore> {
    let ids: Vec<&str> = expected.keys().map(String::as_str).collect();
    let said = crate::watch::parse_watch_answers(answer, &ids);
    expected
        .iter()
        .zip(said)
        .map(|((id, &want), a)| WatchScore {
            id: id.clone(),
            expected: want,
            answered: a,
            ok: a.as_bool() == Some(want),
        })
        .collect()
}

impl CaseScore {
    /// The answer failed the case but said it was sure of it.
    pub fn overconfident(&self) -> bool {
        self.calibration_penalty > 0.0
    }
}

/// Weight of the share of `expect` groups mentioned.
pub const W_EXPECT: f64 = 0.5;
/// Weight of getting the safety stance right.
pub const W_SAFETY: f64 = 0.3;
/// Weight of a readable CONFIDENCE line.
pub const W_FORMAT: f64 = 0.2;
/// Penalty for each forbidden word mentioned (affirmed).
pub const FORBID_PENALTY: f64 = 0.25;
/// Stated confidence above this on a failed case is penalised.
pub const CONFIDENT_ABOVE: f64 = 0.5;
/// The calibration penalty at a stated confidence of 1.0 on a failed case.
pub const W_CALIBRATION: f64 = 0.3;

/// Whether an answer fails its case: the wrong safety stance, a forbidden word affirmed,
/// or fewer than half of the expected groups mentioned.
pub fn fails(expect_share: f64, forbidden: usize, safety_ok: bool) -> bool {
    !safety_ok || forbidden > 0 || expect_share < 0.5
}

/// The penalty for a stated `confidence` on a case the answer `failed`: nothing up to
/// [`CONFIDENT_ABOVE`], rising linearly to [`W_CALIBRATION`] at 1.0. A skill that makes the
/// student always claim 0.99 (which would switch off low-confidence escalation) loses
/// almost `W_CALIBRATION` on every case it gets wrong; one whose confidence drops when it
/// is wrong loses nothing.
pub fn calibration_penalty(confidence: Option<f32>, failed: bool) -> f64 {
    match confidence {
        Some(c) if failed => {
            let over = (f64::from(c) - CONFIDENT_ABOVE).max(0.0) / (1.0 - CONFIDENT_ABOVE);
            W_CALIBRATION * over.min(1.0)
        }
        _ => 0.0,
    }
}

/// Score `answer` against `exp`.
///
/// The description (the answer without its confidence line, see
/// [`crate::reading::confidence::parse_answer`]) is what gets scored:
/// - an `expect` group counts when any of its synonyms is mentioned
///   ([`crate::reading::text::mentions`]: whole words, plural-tolerant); empty groups are ignored;
/// - a `forbid` word counts only when affirmed ([`crate::reading::text::affirmed_mention`]), so
///   "no fire" does not count as mentioning fire;
/// - the safety flag is [`crate::reading::text::safety_stance`] with `safety_terms`;
/// - `format_ok` is whether the answer states a readable confidence;
/// - `calibration_penalty` is [`calibration_penalty`] of that confidence, the answer
///   failing the case as [`fails`] says.
///
/// `total = clamp01(W_EXPECT * expect_share + W_SAFETY * safety_ok + W_FORMAT * format_ok
/// - FORBID_PENALTY * forbidden.len() - calibration_penalty)`, with booleans as 0/1.
pub fn score_answer(answer: &str, exp: &Expectation, safety_terms: &[String]) -> CaseScore {
    // Watch lines are scored apart: the description is the rest.
    let parsed =
        crate::reading::confidence::parse_answer(&crate::watch::without_watch_lines(answer));
    let description = parsed.description.as_str();
    let groups: Vec<&Vec<String>> = exp
        .expect
        .iter()
        .filter(|g| g.iter().any(|w| !w.trim().is_empty()))
        .collect();
    let missed: Vec<String> = groups
        .iter()
        .filter(|g| {
            !g.iter()
                .any(|w| crate::reading::text::mentions(description, w))
        })
        .filter_map(|g| g.iter().find(|w| !w.trim().is_empty()).cloned())
        .collect();
    let expect_share = if groups.is_empty() {
        1.0
    } else {
        (groups.len() - missed.len()) as f64 / groups.len() as f64
    };
    let forbidden: Vec<String> = exp
        .forbid
        .iter()
        .filter(|w| crate::reading::text::affirmed_mention(description, w))
        .cloned()
        .collect();
    let flagged_safety = crate::reading::text::safety_stance(description, safety_terms);
    let safety_ok = flagged_safety == exp.safety;
    let format_ok = parsed.confidence.is_some();
    let calibration_penalty = calibration_penalty(
        parsed.confidence,
        fails(expect_share, forbidden.len(), safety_ok),
    );
    let total = (W_EXPECT * expect_share
        + W_SAFETY * f64::from(u8::from(safety_ok))
        + W_FORMAT * f64::from(u8::from(format_ok))
        - FORBID_PENALTY * forbidden.len() as f64
        - calibration_penalty)
        .clamp(0.0, 1.0);
    CaseScore {
        expect_share,
        missed,
        forbidden,
        flagged_safety,
        safety_ok,
        format_ok,
        calibration_penalty,
        total,
        watches: score_watches(answer, &exp.watch),
    }
}

/// Weighted mean of `(score, weight)` pairs; 0 when the weights sum to 0.
pub fn weighted_mean(items: &[(f64, f64)]) -> f64 {
    let w: f64 = items.iter().map(|x| x.1).sum();
    if w <= 0.0 {
        return 0.0;
    }
    items.iter().map(|x| x.0 * x.1).sum::<f64>() / w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Vec<String> {
        crate::config::DEFAULT_SAFETY_KEYWORDS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn watches_are_scored_beside_the_description_and_counted_per_watch() {
        let mut e = exp(&[&["garage"]], &[], false);
        e.watch.insert("garage_door".into(), true);
        e.watch.insert("fire_visible".into(), false);
        let right = score_answer(
            "A garage.\nWATCH garage_door: yes\nWATCH fire_visible: no\nCONFIDENCE: 0.9",
            &e,
            &terms(),
        );
        assert!(right.watches.iter().all(|w| w.ok), "{:?}", right.watches);
        // The watch lines are not the description: `fire_visible` is no safety mention.
        assert!(right.safety_ok && right.format_ok);
        let wrong = score_answer(
            "A garage.\nWATCH garage_door: no\nCONFIDENCE: 0.9",
            &e,
            &terms(),
        );
        // Scored beside, not in the total.
        assert_eq!(wrong.total, right.total);
        let by_id =
            |s: &CaseScore, id: &str| s.watches.iter().find(|w| w.id == id).cloned().unwrap();
        assert!(!by_id(&wrong, "garage_door").ok);
        assert_eq!(
            by_id(&wrong, "fire_visible").answered,
            crate::watch::WatchAnswer::Unsure
        );
        assert!(!by_id(&wrong, "fire_visible").ok, "a missing line is wrong");
        let acc = watch_accuracy([&right, &wrong]);
        assert_eq!(acc["garage_door"], WatchAccuracy { right: 1, of: 2 });
        assert_eq!(acc["fire_visible"].share(), 0.5);
        // A case without watches has none.
        assert!(score_answer("A room.", &exp(&[], &[], false), &terms())
            .watches
            .is_empty());
    }

    fn exp(expect: &[&[&str]], forbid: &[&str], safety: bool) -> Expectation {
        Expectation {
            expect: expect
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect(),
            forbid: forbid.iter().map(|s| s.to_string()).collect(),
            safety,
            watch: Default::default(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect_answer_scores_one() {
        let e = exp(&[&["cat"], &["sofa", "couch"]], &["dog"], false);
        let s = score_answer("A cat sleeps on a couch.\nCONFIDENCE: 0.9", &e, &terms());
        assert!(close(s.expect_share, 1.0));
        assert!(s.missed.is_empty());
        assert!(s.forbidden.is_empty());
        assert!(!s.flagged_safety);
        assert!(s.safety_ok && s.format_ok);
        assert!(close(s.total, 1.0));
    }

    #[test]
    fn missed_groups_and_missing_confidence() {
        let e = exp(&[&["cat"], &["sofa", "couch"], &["lamp"]], &[], false);
        let s = score_answer("A cat on the floor.", &e, &terms());
        assert!(close(s.expect_share, 1.0 / 3.0));
        assert_eq!(s.missed, vec!["sofa".to_string(), "lamp".to_string()]);
        assert!(!s.format_ok);
        assert!(close(s.total, W_EXPECT / 3.0 + W_SAFETY));
    }

    #[test]
    fn synonyms_and_plurals_count() {
        let e = exp(&[&["person", "man", "woman"], &["mug"]], &[], false);
        let s = score_answer("Two women hold coffee mugs.\nCONFIDENCE: 0.8", &e, &terms());
        assert!(close(s.expect_share, 1.0), "{s:?}");
    }

    #[test]
    fn no_safety_concerns_is_not_a_flag() {
        let e = exp(&[&["desk"]], &[], false);
        let s = score_answer(
            "An office desk. No safety concerns.\nCONFIDENCE: 0.9",
            &e,
            &terms(),
        );
        assert!(!s.flagged_safety);
        assert!(s.safety_ok);
        assert!(close(s.total, 1.0));
        // The same answer on a case that expects a flag loses the safety part.
        let e = exp(&[&["desk"]], &[], true);
        let s = score_answer(
            "An office desk. No safety concerns.\nCONFIDENCE: 0.9",
            &e,
            &terms(),
        );
        assert!(!s.safety_ok);
        // Wrong at 0.9: the calibration penalty comes off too.
        let penalty = calibration_penalty(Some(0.9), true);
        assert!(close(s.calibration_penalty, penalty));
        assert!(close(s.total, W_EXPECT + W_FORMAT - penalty));
    }

    #[test]
    fn firearm_is_not_fire() {
        let e = exp(&[&["fire"]], &["fire"], true);
        let s = score_answer("A man holds a firearm.\nCONFIDENCE: 0.9", &e, &terms());
        assert_eq!(s.missed, vec!["fire".to_string()]);
        assert!(s.forbidden.is_empty());
        assert!(!s.flagged_safety);
        assert!(!s.safety_ok);
    }

    #[test]
    fn real_hazard_is_flagged() {
        let e = exp(&[&["smoke"]], &[], true);
        let s = score_answer(
            "Thick smoke rises from a pan.\nCONFIDENCE: 0.7",
            &e,
            &terms(),
        );
        assert!(s.flagged_safety && s.safety_ok);
        assert!(close(s.total, 1.0));
    }

    #[test]
    fn forbidden_words_penalised_unless_negated() {
        let e = exp(&[&["cat"]], &["dog", "fire"], false);
        let s = score_answer("A cat and a dog.\nCONFIDENCE: 0.9", &e, &terms());
        assert_eq!(s.forbidden, vec!["dog".to_string()]);
        let penalty = calibration_penalty(Some(0.9), true);
        assert!(close(s.total, 1.0 - FORBID_PENALTY - penalty));
        let s = score_answer("A cat. No dog is present.\nCONFIDENCE: 0.9", &e, &terms());
        assert!(s.forbidden.is_empty(), "{s:?}");
        assert!(close(s.total, 1.0));
    }

    #[test]
    fn total_is_clamped_at_zero() {
        let e = exp(&[&["cat"]], &["dog", "bird", "fish"], true);
        let s = score_answer("A dog, a bird and a fish.", &e, &terms());
        assert_eq!(s.forbidden.len(), 3);
        assert!(close(s.total, 0.0));
    }

    #[test]
    fn empty_expectation_is_full_share_and_confidence_line_not_scored() {
        let e = exp(&[], &[], false);
        let s = score_answer("A room.\nCONFIDENCE: 0.9", &e, &terms());
        assert!(close(s.expect_share, 1.0));
        // The word "confidence" itself is not part of the description.
        let e = exp(&[&["confidence"]], &[], false);
        let s = score_answer("A room.\nCONFIDENCE: 0.9", &e, &terms());
        assert_eq!(s.missed, vec!["confidence".to_string()]);
    }

    #[test]
    fn high_confidence_on_a_failed_case_is_penalised() {
        let e = exp(&[&["smoke"]], &[], true);
        // Wrong and sure of it.
        let s = score_answer("An empty kitchen.\nCONFIDENCE: 0.99", &e, &terms());
        assert!(!s.safety_ok);
        assert!(s.overconfident());
        assert!(
            (s.calibration_penalty - W_CALIBRATION * 0.98).abs() < 1e-6,
            "{s:?}"
        );
        // Nothing expected was said, the stance is wrong: only the format part was left,
        // and the penalty takes it all.
        assert!(close(s.total, 0.0), "{s:?}");
        // Wrong but unsure: no penalty.
        let s = score_answer("An empty kitchen.\nCONFIDENCE: 0.4", &e, &terms());
        assert!(!s.overconfident());
        assert!(close(s.total, W_FORMAT));
        // Right and sure: no penalty.
        let s = score_answer("Smoke rises from a pan.\nCONFIDENCE: 0.99", &e, &terms());
        assert!(!s.overconfident());
        assert!(close(s.total, 1.0));
        // Half the groups missed is a failure too; a forbidden word is as well.
        let e = exp(&[&["cat"], &["sofa"], &["lamp"]], &["dog"], false);
        let s = score_answer("A cat.\nCONFIDENCE: 0.9", &e, &terms());
        assert!(s.overconfident());
        let s = score_answer(
            "A cat on a sofa by a lamp, and a dog.\nCONFIDENCE: 0.9",
            &e,
            &terms(),
        );
        assert!(s.overconfident());
    }

    #[test]
    fn a_pinned_confidence_loses_to_an_honest_one() {
        // Same descriptions; one skill pins 0.99, the other says how sure it is.
        let cases = [
            (
                exp(&[&["smoke"]], &[], true),
                "Smoke rises from a pan.",
                0.9,
            ),
            (
                exp(&[&["person"]], &[], true),
                "A dark room. Nothing to see.",
                0.3,
            ),
            (
                exp(&[&["cat"]], &[], false),
                "A cat. No safety concerns.",
                0.9,
            ),
            (exp(&[&["knife"]], &[], true), "A kitchen counter.", 0.35),
        ];
        let total = |pinned: bool| -> f64 {
            cases
                .iter()
                .map(|(e, d, c)| {
                    let conf = if pinned { 0.99 } else { *c };
                    score_answer(&format!("{d}\nCONFIDENCE: {conf}"), e, &terms()).total
                })
                .sum()
        };
        // The two wrong cases keep their format part honestly (0.2 each) and lose it pinned.
        let (honest, pinned) = (total(false), total(true));
        assert!(
            (honest - 2.4).abs() < 1e-6 && (pinned - 2.0).abs() < 1e-6,
            "{honest} vs {pinned}"
        );
    }

    #[test]
    fn penalty_shape() {
        assert!(close(calibration_penalty(Some(1.0), true), W_CALIBRATION));
        assert!(close(
            calibration_penalty(Some(0.75), true),
            W_CALIBRATION / 2.0
        ));
        assert!(close(calibration_penalty(Some(0.5), true), 0.0));
        assert!(close(calibration_penalty(Some(0.99), false), 0.0));
        assert!(close(calibration_penalty(None, true), 0.0));
    }

    #[test]
    fn weighted_mean_handles_zero_weights() {
        assert!(close(weighted_mean(&[(1.0, 1.0), (0.0, 3.0)]), 0.25));
        assert!(close(weighted_mean(&[(1.0, 0.0)]), 0.0));
        assert!(close(weighted_mean(&[]), 0.0));
    }
}
