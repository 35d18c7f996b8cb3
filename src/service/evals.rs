//! `eval` requests in the service: one eval at a time (as an upskill run is), a bounded
//! queue behind it (a request beyond it is refused with the reason), and a client's
//! evals, running or waiting, cancelled when it disconnects. So a flood of `eval` lines
//! costs one eval's memory and one eval's share of the student, and stops with its client.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::task::AbortHandle;

/// Evals waiting behind the running one.
pub const EVAL_QUEUE: usize = 4;

/// An eval to run: its future gives the reply; `client` asked for it.
pub type EvalJob = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why an eval request was refused.
pub fn queue_full() -> String {
    format!(
        "the service runs one eval at a time and {EVAL_QUEUE} are waiting already: try again when one has finished"
    )
}

#[derive(Default)]
struct State {
    running: Option<(u64, AbortHandle)>,
    waiting: VecDeque<(u64, EvalJob)>,
}

/// The evals of every client of a hub.
#[derive(Clone, Default)]
pub struct Evals {
    state: Arc<Mutex<State>>,
}

impl Evals {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `job` for `client`; Err(reason) when the queue is full.
    pub fn submit(&self, client: u64, job: EvalJob) -> Result<(), String> {
        {
            let mut st = self.lock();
            if st.waiting.len() >= EVAL_QUEUE && st.running.is_some() {
                return Err(queue_full());
            }
            st.waiting.push_back((client, job));
        }
        self.next();
        Ok(())
    }

    /// Start the next waiting eval when none runs.
    fn next(&self) {
        let mut st = self.lock();
        if st.running.as_ref().is_some_and(|(_, h)| !h.is_finished()) {
            return;
        }
        st.running = None;
        let Some((client, job)) = st.waiting.pop_front() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let me = self.clone();
        let task = rt.spawn(async move {
            job.await;
            // Ours is done: let the next one start (unless a cancel already has).
            {
                let mut st = me.lock();
                if st
                    .running
                    .as_ref()
                    .is_some_and(|(_, h)| h.id() == tokio::task::id())
                {
                    st.running = None;
                }
            }
            me.next();
        });
        st.running = Some((client, task.abort_handle()));
    }

    /// `client` has gone: its waiting evals are dropped, its running one aborted.
    pub fn cancel_client(&self, client: u64) {
        let aborted = {
            let mut st = self.lock();
            st.waiting.retain(|(c, _)| *c != client);
            match &st.running {
                Some((c, h)) if *c == client => {
                    h.abort();
                    st.running = None;
                    true
                }
                _ => false,
            }
        };
        if aborted {
            self.next();
        }
    }

    /// (running, waiting).
    pub fn load(&self) -> (usize, usize) {
        let st = self.lock();
        (
            usize::from(st.running.as_ref().is_some_and(|(_, h)| !h.is_finished())),
            st.waiting.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn job(
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        done: Arc<AtomicUsize>,
        ms: u64,
    ) -> EvalJob {
        /// Counts down when the job ends, finished or aborted.
        struct Running(Arc<AtomicUsize>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        Box::pin(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            let _running = Running(running);
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            done.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[tokio::test]
    async fn one_at_a_time_a_bounded_queue_and_cancel_on_disconnect() {
        let e = Evals::default();
        let (running, most, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        );
        let mk = |ms| job(running.clone(), most.clone(), done.clone(), ms);
        // Client 1: one running and four waiting; the sixth is refused.
        for _ in 0..=EVAL_QUEUE {
            e.submit(1, mk(30)).unwrap();
        }
        let refused = e.submit(1, mk(30)).unwrap_err();
        assert!(refused.contains("one eval at a time"), "{refused}");
        assert_eq!(e.load(), (1, EVAL_QUEUE));
        tokio::time::sleep(Duration::from_millis(45)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
        // Client 1 leaves: nothing more of it runs.
        e.cancel_client(1);
        assert_eq!(e.load().1, 0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1, "cancelled evals ran on");
        // Another client's eval runs.
        e.submit(2, mk(5)).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(done.load(Ordering::SeqCst), 2);
        assert_eq!(most.load(Ordering::SeqCst), 1, "never two at once");
    }
}
