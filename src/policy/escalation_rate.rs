//! The escalation rate over a recent window, and what an escalation storm likely comes
//! from. Pure (the caller gives the time).
//!
//! With a weak student nearly every frame escalates (no or low confidence), the teacher
//! queue stays full and most frames are dropped from it. The share of escalated answers in
//! the last five minutes shows that; above `policy.storm_share` the engine warns once,
//! naming the trigger behind most of the escalations and what to do about it.

use crate::policy::calibration::trigger_name;
use crate::policy::Reason;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// The window the rate is taken over.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Fewer answers than this in the window say nothing about a rate.
pub const MIN_ANSWERS: usize = 10;
/// Most answers remembered (a fast source cannot grow it without bound).
const MAX_ITEMS: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub struct EscalationRate {
    /// (when, the triggers of an escalated answer; empty: not escalated).
    items: VecDeque<(Instant, Vec<String>)>,
}

impl EscalationRate {
    /// One answer and the reasons it escalated for (empty: it stayed on the device).
    pub fn record(&mut self, now: Instant, reasons: &[Reason]) {
        self.items
            .push_back((now, reasons.iter().map(trigger_name).collect()));
        if self.items.len() > MAX_ITEMS {
            self.items.pop_front();
        }
        self.prune(now);
    }

    fn prune(&mut self, now: Instant) {
        while self
            .items
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > WINDOW)
        {
            self.items.pop_front();
        }
    }

    /// Escalated share of the answers in the window (None below [`MIN_ANSWERS`]).
    pub fn share(&self, now: Instant) -> Option<f64> {
        let within: Vec<&Vec<String>> = self.within(now).collect();
        (within.len() >= MIN_ANSWERS)
            .then(|| within.iter().filter(|r| !r.is_empty()).count() as f64 / within.len() as f64)
    }

    fn within(&self, now: Instant) -> impl Iterator<Item = &Vec<String>> {
        self.items
            .iter()
            .filter(move |(t, _)| now.saturating_duration_since(*t) <= WINDOW)
            .map(|(_, r)| r)
    }

    /// The trigger behind most escalations in the window, with its count.
    pub fn main_trigger(&self) -> Option<(String, usize)> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        // Pruned on every record: what is here is the window as of the last answer.
        for (_, triggers) in &self.items {
            for t in triggers {
                *counts.entry(t.as_str()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(t, n)| (t.to_string(), n))
    }
}

/// What a storm likely comes from, and the fix, for the trigger behind it.
pub fn likely_cause(trigger: &str, threshold: f32) -> String {
    match trigger {
        "no confidence" => "most answers report no confidence: the student does not end with a \
             readable CONFIDENCE line (check its answers; the output contract asks for one)"
            .into(),
        "low confidence" => format!(
            "most answers are below policy.confidence_threshold = {threshold:.2}: the \
             threshold may be too high for this student; the calibration view (c) suggests one"
        ),
        "cut at the token cap" => "most answers hit the token cap: raise student.max_tokens or \
             ask for shorter answers in the skill"
            .into(),
        "echoes the prompt" => "most answers repeat the skill instead of describing the frame: \
             the student may be too small for it"
            .into(),
        t if t.starts_with("safety:") => format!(
            "most escalations are for the safety keyword {}: check the scene, or the keyword \
             list in policy.safety_keywords",
            &t["safety:".len()..]
        ),
        t => format!("most escalations are {t}"),
    }
}

/// The warning for a storm: the share, the limit and the likely cause.
pub fn storm_warning(share: f64, limit: f64, rate: &EscalationRate, threshold: f32) -> String {
    let cause = rate
        .main_trigger()
        .map(|(t, _)| likely_cause(&t, threshold))
        .unwrap_or_default();
    format!(
        "escalation storm: {:.0}% of the answers in the last 5 minutes went to the teacher \
         (warning above {:.0}%, policy.storm_share); {cause}",
        share * 100.0,
        limit * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_over_the_window_and_the_main_trigger() {
        let t0 = Instant::now();
        let mut r = EscalationRate::default();
        for i in 0..9 {
            r.record(t0 + Duration::from_secs(i), &[Reason::NoConfidence]);
        }
        assert_eq!(
            r.share(t0 + Duration::from_secs(9)),
            None,
            "too few answers"
        );
        r.record(t0 + Duration::from_secs(9), &[]);
        assert_eq!(r.share(t0 + Duration::from_secs(9)), Some(0.9));
        assert_eq!(r.main_trigger(), Some(("no confidence".into(), 9)));
        // Five minutes later the old answers are out of the window.
        for i in 0..10 {
            r.record(t0 + Duration::from_secs(400 + i), &[]);
        }
        assert_eq!(r.share(t0 + Duration::from_secs(410)), Some(0.0));
        assert_eq!(r.main_trigger(), None);
    }

    #[test]
    fn the_warning_names_the_cause_and_the_fix() {
        let t0 = Instant::now();
        let mut r = EscalationRate::default();
        for _ in 0..10 {
            r.record(
                t0,
                &[Reason::LowConfidence {
                    confidence: 0.3,
                    threshold: 0.55,
                }],
            );
        }
        let w = storm_warning(r.share(t0).unwrap(), 0.5, &r, 0.55);
        assert!(
            w.starts_with("escalation storm: 100% of the answers"),
            "{w}"
        );
        assert!(w.contains("policy.confidence_threshold = 0.55"), "{w}");
        assert!(w.contains("calibration view (c)"), "{w}");
        assert!(likely_cause("no confidence", 0.5).contains("CONFIDENCE line"));
        assert!(likely_cause("safety:smoke", 0.5).contains("keyword smoke"));
    }
}
