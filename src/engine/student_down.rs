//! The teacher-only watch while the student is down: after the student has been
//! unreachable for `policy.student_down_secs`, one frame every `policy.fallback_every_secs`
//! goes to the teacher (reason `student down`), so safety-relevant scenes still reach
//! someone; it stops as soon as the student answers again. Pure: the student loop tells
//! it what it sees and does what it says.

use std::time::{Duration, Instant};

/// What the watch says about one frame the student could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct DownStep {
    /// Send this frame to the teacher (reason `student down`).
    pub send: bool,
    /// The teacher started (`Some(true)`) or stopped (`Some(false)`) watching alone.
    pub alone: Option<bool>,
    /// The teacher is down too: nothing can review the frames (said once per spell).
    pub both_down: bool,
}

#[derive(Debug)]
pub(super) struct DownWatch {
    /// How long the student must be down before the teacher watches alone.
    after: Duration,
    /// One frame per this long; None = off.
    every: Option<Duration>,
    /// The student is down since then (None: it answers, or was never seen down).
    since: Option<Instant>,
    last_sent: Option<Instant>,
    /// The teacher watches alone (shown to the faces).
    alone: bool,
    both_down_said: bool,
}

impl DownWatch {
    pub(super) fn new(student_down_secs: u64, fallback_every_secs: u64) -> Self {
        DownWatch {
            after: Duration::from_secs(student_down_secs),
            every: (fallback_every_secs > 0).then(|| Duration::from_secs(fallback_every_secs)),
            since: None,
            last_sent: None,
            alone: false,
            both_down_said: false,
        }
    }

    /// The student could not be reached (or cannot answer at all) at `now`.
    pub(super) fn down(&mut self, now: Instant) {
        self.since.get_or_insert(now);
    }

    /// The student answered: the watch ends. `Some(false)` when the teacher was watching
    /// alone until now.
    pub(super) fn answered(&mut self) -> Option<bool> {
        self.since = None;
        self.last_sent = None;
        self.both_down_said = false;
        std::mem::take(&mut self.alone).then_some(false)
    }

    /// A frame the student could not answer, at `now`, the teacher `teacher_online` or not.
    pub(super) fn frame(&mut self, now: Instant, teacher_online: bool) -> DownStep {
        let mut step = DownStep::default();
        let (Some(since), Some(every)) = (self.since, self.every) else {
            return step;
        };
        if now.saturating_duration_since(since) < self.after {
            return step;
        }
        if !teacher_online {
            if std::mem::take(&mut self.alone) {
                step.alone = Some(false);
            }
            step.both_down = !std::mem::replace(&mut self.both_down_said, true);
            return step;
        }
        self.both_down_said = false;
        if !std::mem::replace(&mut self.alone, true) {
            step.alone = Some(true);
        }
        step.send = self
            .last_sent
            .is_none_or(|t| now.saturating_duration_since(t) >= every);
        if step.send {
            self.last_sent = Some(now);
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, secs: u64) -> Instant {
        t0 + Duration::from_secs(secs)
    }

    #[test]
    fn one_frame_per_interval_once_the_student_is_down_long_enough() {
        let t0 = Instant::now();
        let mut w = DownWatch::new(30, 20);
        // Never seen down: nothing.
        assert_eq!(w.frame(t0, true), DownStep::default());
        w.down(t0);
        w.down(at(t0, 10)); // the first time counts
        assert!(!w.frame(at(t0, 29), true).send, "not down long enough");
        let first = w.frame(at(t0, 30), true);
        assert_eq!((first.send, first.alone), (true, Some(true)));
        assert_eq!(w.frame(at(t0, 31), true), DownStep::default());
        assert!(!w.frame(at(t0, 49), true).send);
        let again = w.frame(at(t0, 50), true);
        assert_eq!((again.send, again.alone), (true, None));
        // The student answers: the watch stops, and says so once.
        assert_eq!(w.answered(), Some(false));
        assert_eq!(w.answered(), None);
        assert_eq!(w.frame(at(t0, 100), true), DownStep::default());
    }

    #[test]
    fn off_at_zero_and_said_once_while_the_teacher_is_down_too() {
        let t0 = Instant::now();
        let mut off = DownWatch::new(30, 0);
        off.down(t0);
        assert_eq!(off.frame(at(t0, 1000), true), DownStep::default());

        let mut w = DownWatch::new(0, 20);
        w.down(t0);
        let s = w.frame(t0, false);
        assert_eq!((s.send, s.both_down, s.alone), (false, true, None));
        assert_eq!(w.frame(at(t0, 40), false), DownStep::default(), "said once");
        // The teacher is back: it watches alone at once.
        let s = w.frame(at(t0, 41), true);
        assert_eq!((s.send, s.alone), (true, Some(true)));
        // Down again: the watch is off, and that is said again.
        let s = w.frame(at(t0, 42), false);
        assert_eq!((s.send, s.alone, s.both_down), (false, Some(false), true));
    }
}
