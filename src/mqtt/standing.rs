//! Whether a confirmed safety alert stands: the state of the alert binary sensor
//! (`<prefix>/D/alert_state`, retained `ON` / `OFF`). The alerts themselves stay events
//! on `<prefix>/D/alert`.
//!
//! Today an alert stands from a confirmed safety verdict until [`HOLD`] has passed with no
//! newer one, or until the teacher reviews a newer frame and finds nothing unsafe. Once
//! incidents exist, [`AlertStanding::stands`] becomes "an open incident exists".

use std::time::{Duration, Instant};

/// How long an alert stands after the last confirmed one when nothing clears it.
pub const HOLD: Duration = Duration::from_secs(super::discovery::ALERT_ON_SECS);

/// What the rule needs to know: the newest confirmed alert, and whether a later verdict
/// cleared it.
#[derive(Debug, Clone, Default)]
pub struct AlertStanding {
    /// `(seq, when)` of the newest confirmed safety verdict (rate-limited ones too: the
    /// limit is for messages, not for the state).
    last: Option<(u64, Instant)>,
    /// Seq of the newest verdict that found nothing unsafe.
    cleared_by: Option<u64>,
}

impl AlertStanding {
    /// A teacher verdict on frame `seq`: `alert` when it confirmed a safety concern.
    pub fn verdict(&mut self, seq: u64, alert: bool, now: Instant) {
        if alert {
            if self.last.is_none_or(|(s, _)| seq >= s) {
                self.last = Some((seq, now));
            }
        } else if self.cleared_by.is_none_or(|s| seq > s) {
            self.cleared_by = Some(seq);
        }
    }

    /// Does an alert stand at `now`?
    pub fn stands(&self, now: Instant) -> bool {
        stands(self.last, self.cleared_by, now, HOLD)
    }

    /// When [`stands`](Self::stands) turns false by itself (the hold runs out).
    pub fn ends_at(&self) -> Option<Instant> {
        self.last.map(|(_, at)| at + HOLD)
    }
}

/// The rule itself: the newest confirmed alert is younger than `hold` and no verdict on a
/// later frame cleared it.
pub fn stands(
    last: Option<(u64, Instant)>,
    cleared_by: Option<u64>,
    now: Instant,
    hold: Duration,
) -> bool {
    match last {
        None => false,
        Some((seq, at)) => {
            now.saturating_duration_since(at) < hold && cleared_by.is_none_or(|c| c < seq)
        }
    }
}

/// The retained payload for the state topic.
pub fn payload(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stands_until_cleared_or_held_long_enough() {
        let t0 = Instant::now();
        let mut a = AlertStanding::default();
        assert!(!a.stands(t0), "nothing confirmed yet");
        a.verdict(5, true, t0);
        assert!(a.stands(t0 + Duration::from_secs(1)));
        // A verdict on an older frame that saw nothing does not clear it.
        a.verdict(4, false, t0);
        assert!(a.stands(t0 + Duration::from_secs(2)));
        // Held: gone after HOLD with nothing newer.
        assert!(!a.stands(t0 + HOLD));
        assert_eq!(a.ends_at(), Some(t0 + HOLD));
        // A newer frame found safe ends it at once.
        a.verdict(6, false, t0);
        assert!(!a.stands(t0 + Duration::from_secs(3)));
        // A newer alert stands again.
        a.verdict(7, true, t0 + Duration::from_secs(4));
        assert!(a.stands(t0 + Duration::from_secs(5)));
        assert_eq!(payload(true), "ON");
        assert_eq!(payload(false), "OFF");
    }
}
