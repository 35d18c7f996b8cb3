//! One scheduler in front of a model: live work first, background work (eval and
//! upskill calls) fills the gaps.
//!
//! A model server on a Pi runs one call at a time, so whoever calls it takes a permit
//! first. A waiting live call (a frame; for the teacher, a review) goes next, except that
//! after each live call up to `share` background calls may go first when they were
//! already waiting: background work never starves behind a student that is always busy,
//! and a live frame waits for at most `share` background calls (one, by default, the
//! one in flight). So while an upskill runs, frames are still answered at least every
//! `max(1/fps, (share + 1) × the call time)`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Monitoring: a live frame for the student, an escalation review for the teacher.
    Live,
    /// Eval and upskill calls.
    Background,
}

/// What the scheduler has done so far (for the status bar and the benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    pub live_granted: u64,
    pub background_granted: u64,
    /// Background calls waiting right now.
    pub background_waiting: usize,
    /// Calls holding a permit right now.
    pub in_flight: usize,
}

struct State {
    slots: usize,
    share: usize,
    in_flight: usize,
    /// Background grants since the last live grant.
    background_run: usize,
    live: VecDeque<oneshot::Sender<Permit>>,
    background: VecDeque<oneshot::Sender<Permit>>,
    stats: SchedulerStats,
}

/// A model's scheduler; clones share it.
#[derive(Clone)]
pub struct Scheduler {
    state: Arc<Mutex<State>>,
}

/// The right to make one call; dropping it lets the next caller go.
pub struct Permit {
    state: Option<Arc<Mutex<State>>>,
    pub priority: Priority,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let mut s = state.lock().expect("scheduler lock");
            s.in_flight -= 1;
            dispatch(&mut s, &state);
        }
    }
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Hand out permits while there are free slots: live first, unless `share` background
/// calls may go first since the last live one.
fn dispatch(s: &mut State, shared: &Arc<Mutex<State>>) {
    while s.in_flight < s.slots {
        let live_first = s.background.is_empty() || s.background_run >= s.share;
        let (tx, priority) = if live_first && !s.live.is_empty() {
            (s.live.pop_front(), Priority::Live)
        } else if !s.background.is_empty() {
            (s.background.pop_front(), Priority::Background)
        } else {
            (s.live.pop_front(), Priority::Live)
        };
        let Some(tx) = tx else { return };
        // The slot is taken before the send: a permit dropped unreceived (its waiter
        // gave up) gives it back through its own Drop.
        s.in_flight += 1;
        let permit = Permit {
            state: Some(shared.clone()),
            priority,
        };
        match tx.send(permit) {
            Ok(()) => match priority {
                Priority::Live => {
                    s.background_run = 0;
                    s.stats.live_granted += 1;
                }
                Priority::Background => {
                    s.background_run += 1;
                    s.stats.background_granted += 1;
                }
            },
            Err(mut unsent) => {
                // Nobody waits any more; undo without re-entering the lock.
                unsent.state = None;
                s.in_flight -= 1;
            }
        }
    }
}

impl Scheduler {
    /// `slots` calls at once (1 for a Pi), `share` background calls between live ones.
    pub fn new(slots: usize, share: usize) -> Self {
        Scheduler {
            state: Arc::new(Mutex::new(State {
                slots: slots.max(1),
                share,
                in_flight: 0,
                background_run: 0,
                live: VecDeque::new(),
                background: VecDeque::new(),
                stats: SchedulerStats::default(),
            })),
        }
    }

    /// Wait for a permit. Cancel-safe: a waiter that gives up never holds a slot.
    pub async fn acquire(&self, priority: Priority) -> Permit {
        let rx = {
            let mut s = self.state.lock().expect("scheduler lock");
            let (tx, rx) = oneshot::channel();
            match priority {
                Priority::Live => s.live.push_back(tx),
                Priority::Background => s.background.push_back(tx),
            }
            dispatch(&mut s, &self.state);
            rx
        };
        rx.await
            .expect("the scheduler never drops a waiter it has not served")
    }

    pub fn stats(&self) -> SchedulerStats {
        let s = self.state.lock().expect("scheduler lock");
        SchedulerStats {
            background_waiting: s.background.iter().filter(|t| !t.is_closed()).count(),
            in_flight: s.in_flight,
            ..s.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Start a waiter and let it queue.
    async fn queue(s: &Scheduler, p: Priority) -> tokio::task::JoinHandle<Permit> {
        let s = s.clone();
        let h = tokio::spawn(async move { s.acquire(p).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        h
    }

    #[tokio::test]
    async fn live_goes_first_after_the_share() {
        let s = Scheduler::new(1, 1);
        let first = s.acquire(Priority::Background).await;
        let b1 = queue(&s, Priority::Background).await;
        let b2 = queue(&s, Priority::Background).await;
        let live = queue(&s, Priority::Live).await;
        // One background call has run since the last live one: live is next.
        drop(first);
        let p = live.await.unwrap();
        assert_eq!(p.priority, Priority::Live);
        assert!(!b1.is_finished());
        // After a live call, one background call may go before the next live one.
        let live2 = queue(&s, Priority::Live).await;
        drop(p);
        let p = b1.await.unwrap();
        assert_eq!(p.priority, Priority::Background);
        drop(p);
        let p = live2.await.unwrap();
        assert_eq!(p.priority, Priority::Live);
        drop(p);
        drop(b2.await.unwrap());
        let st = s.stats();
        assert_eq!((st.live_granted, st.background_granted), (2, 3));
        assert_eq!(st.in_flight, 0);
    }

    #[tokio::test]
    async fn background_runs_freely_when_nothing_live_waits() {
        let s = Scheduler::new(1, 1);
        for _ in 0..5 {
            drop(s.acquire(Priority::Background).await);
        }
        assert_eq!(s.stats().background_granted, 5);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_frees_its_turn() {
        let s = Scheduler::new(1, 0);
        let held = s.acquire(Priority::Live).await;
        let gave_up = queue(&s, Priority::Background).await;
        gave_up.abort();
        let _ = gave_up.await;
        let next = queue(&s, Priority::Background).await;
        drop(held);
        let p = tokio::time::timeout(Duration::from_secs(1), next)
            .await
            .expect("not stuck behind the waiter that left")
            .unwrap();
        drop(p);
        assert_eq!(s.stats().in_flight, 0);
    }

    #[tokio::test]
    async fn share_zero_is_strict_live_priority() {
        let s = Scheduler::new(1, 0);
        let held = s.acquire(Priority::Live).await;
        let b = queue(&s, Priority::Background).await;
        let l = queue(&s, Priority::Live).await;
        drop(held);
        let p = l.await.unwrap();
        assert_eq!(p.priority, Priority::Live);
        assert!(!b.is_finished());
        drop(p);
        drop(b.await.unwrap());
    }
}
