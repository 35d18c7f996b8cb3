//! At most N events in any minute (a sliding window; pure, given the time): the forced
//! escalations a face or a command may ask for, the learned cases a socket may save.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub struct PerMinute {
    max: usize,
    recent: VecDeque<Instant>,
}

impl PerMinute {
    pub fn new(max: usize) -> Self {
        PerMinute {
            max,
            recent: VecDeque::new(),
        }
    }

    /// Is there room for one more at `now`? Counts it when yes.
    pub fn admit(&mut self, now: Instant) -> bool {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_in_any_minute() {
        let t0 = Instant::now();
        let mut w = PerMinute::new(2);
        assert!(w.admit(t0));
        assert!(w.admit(t0 + Duration::from_secs(10)));
        assert!(!w.admit(t0 + Duration::from_secs(59)));
        // The first leaves the window: room for one.
        assert!(w.admit(t0 + Duration::from_secs(60)));
        assert!(!w.admit(t0 + Duration::from_secs(61)));
        assert!(!PerMinute::new(0).admit(t0));
    }
}
