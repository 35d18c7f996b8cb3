//! The teacher queue: bounded, highest priority first, oldest first within a priority;
//! when full, the lowest-priority oldest entry is dropped (possibly the new one). The
//! queue gives each job its priority (from the job's reasons) and wakes the worker when a
//! job comes in; the worker's `pop` waits for one.

use crate::policy::{priority_of, Priority, Reason};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::{watch, Notify};

/// A job for the teacher: escalated for these reasons.
pub trait Escalation {
    fn reasons(&self) -> &[Reason];
}

/// A job's place in the queue: its highest reason's priority (an audit when it has none).
pub fn priority<T: Escalation>(job: &T) -> Priority {
    priority_of(job.reasons()).unwrap_or(Priority::Audit)
}

/// What a push did.
#[derive(Debug)]
pub struct Pushed<T> {
    /// Jobs queued now.
    pub len: usize,
    /// The job pushed out to make room (possibly the new one).
    pub dropped: Option<T>,
}

/// The queue between the student loop and the teacher worker.
#[derive(Debug)]
pub struct TeacherQueue<T> {
    state: Mutex<State<T>>,
    wake: Notify,
}

#[derive(Debug)]
struct State<T> {
    jobs: BoundedQueue<T>,
    /// The worker took a job and has not come back for the next: set and cleared under
    /// the same lock as the jobs, so "empty and not busy" is never seen between a pop and
    /// its review.
    busy: bool,
}

impl<T: Escalation> TeacherQueue<T> {
    pub fn new(cap: usize) -> Self {
        TeacherQueue {
            state: Mutex::new(State {
                jobs: BoundedQueue::new(cap),
                busy: false,
            }),
            wake: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a job at its priority and wake the worker.
    pub fn push(&self, job: T) -> Pushed<T> {
        let pushed = {
            let mut st = self.state();
            let dropped = st.jobs.push(priority(&job), job);
            Pushed {
                len: st.jobs.len(),
                dropped,
            }
        };
        self.wake.notify_one();
        pushed
    }

    /// Put a job the worker could not finish back at the front of its priority; returns
    /// it when the queue is full.
    pub fn put_back(&self, job: T) -> Option<T> {
        self.state().jobs.push_front(priority(&job), job)
    }

    /// The next job, once `ready` is true (the teacher is online) and one is queued:
    /// waits for both. Cancel-safe: a job leaves the queue only when it is returned. The
    /// worker counts as busy from then until it next comes for a job and finds none.
    pub async fn pop(&self, ready: &mut watch::Receiver<bool>) -> T {
        loop {
            if ready.wait_for(|r| *r).await.is_err() {
                // Nobody can open the gate any more: wait for the caller to stop.
                std::future::pending::<()>().await;
            }
            // Registered before looking, so a push between the look and the wait counts.
            let pushed = self.wake.notified();
            {
                let mut st = self.state();
                let job = st.jobs.pop();
                st.busy = job.is_some();
                if let Some(job) = job {
                    return job;
                }
            }
            pushed.await;
        }
    }

    pub fn len(&self) -> usize {
        self.state().jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state().jobs.is_empty()
    }

    /// Nothing queued and the worker not on a job.
    pub fn is_idle(&self) -> bool {
        let st = self.state();
        st.jobs.is_empty() && !st.busy
    }

    /// Take every job left, in the order the worker would have.
    pub fn drain(&self) -> Vec<T> {
        let mut st = self.state();
        std::iter::from_fn(|| st.jobs.pop()).collect()
    }
}

/// The queue's order and bound, without locking or waking.
#[derive(Debug)]
pub struct BoundedQueue<T> {
    cap: usize,
    next_order: u64,
    items: Vec<(Priority, u64, T)>,
}

impl<T> BoundedQueue<T> {
    pub fn new(cap: usize) -> Self {
        BoundedQueue {
            cap: cap.max(1),
            next_order: 0,
            items: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Add an entry; returns the entry dropped to make room, if any.
    pub fn push(&mut self, priority: Priority, item: T) -> Option<T> {
        let order = self.next_order;
        self.next_order += 1;
        if self.items.len() < self.cap {
            self.items.push((priority, order, item));
            return None;
        }
        // Full: the victim is the lowest priority, oldest first.
        let victim = self
            .items
            .iter()
            .enumerate()
            .min_by_key(|(_, (p, o, _))| (*p, *o))
            .map(|(i, (p, _, _))| (i, *p));
        match victim {
            Some((i, p)) if p <= priority => {
                let (_, _, dropped) = self.items.remove(i);
                self.items.push((priority, order, item));
                Some(dropped)
            }
            _ => Some(item),
        }
    }

    /// Put an entry back at the front of its priority (a call that could not be made).
    pub fn push_front(&mut self, priority: Priority, item: T) -> Option<T> {
        let order = self
            .items
            .iter()
            .map(|x| x.1)
            .min()
            .unwrap_or(0)
            .saturating_sub(1);
        if self.items.len() < self.cap {
            self.items.push((priority, order, item));
            None
        } else {
            Some(item)
        }
    }

    /// The next entry for the teacher.
    pub fn pop(&mut self) -> Option<T> {
        let i = self
            .items
            .iter()
            .enumerate()
            .max_by_key(|(_, (p, o, _))| (*p, std::cmp::Reverse(*o)))
            .map(|(i, _)| i)?;
        Some(self.items.remove(i).2)
    }

    /// Position (1 = next) of the entry matching `f`.
    pub fn position(&self, f: impl Fn(&T) -> bool) -> Option<usize> {
        let mut order: Vec<&(Priority, u64, T)> = self.items.iter().collect();
        order.sort_by_key(|(p, o, _)| (std::cmp::Reverse(*p), *o));
        order.iter().position(|(_, _, t)| f(t)).map(|i| i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::*;

    #[test]
    fn pops_by_priority_then_age() {
        let mut q = BoundedQueue::new(10);
        q.push(Audit, 1);
        q.push(Confidence, 2);
        q.push(Safety, 3);
        q.push(Confidence, 4);
        q.push(Forced, 5);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![3, 5, 2, 4, 1]);
    }

    #[test]
    fn full_queue_drops_lowest_oldest() {
        let mut q = BoundedQueue::new(3);
        assert_eq!(q.push(Audit, 1), None);
        assert_eq!(q.push(Audit, 2), None);
        assert_eq!(q.push(Safety, 3), None);
        assert_eq!(q.push(Confidence, 4), Some(1));
        assert_eq!(q.push(Forced, 5), Some(2));
        // Nothing lower than the new entry: the new audit itself is dropped.
        assert_eq!(q.push(Audit, 6), Some(6));
        assert_eq!(q.len(), 3);
        assert_eq!(q.position(|x| *x == 3), Some(1), "safety first");
        assert_eq!(q.position(|x| *x == 5), Some(2));
        assert_eq!(q.position(|x| *x == 4), Some(3));
    }

    #[test]
    fn forced_jobs_never_push_out_a_safety_job() {
        let mut q = BoundedQueue::new(2);
        q.push(Safety, 1);
        q.push(Safety, 2);
        for i in 10..100 {
            assert_eq!(
                q.push(Forced, i),
                Some(i),
                "the forced job is the one dropped"
            );
        }
        // A new safety job does push out a forced one.
        let mut q = BoundedQueue::new(2);
        q.push(Forced, 1);
        q.push(Forced, 2);
        assert_eq!(q.push(Safety, 3), Some(1));
        assert_eq!(q.pop(), Some(3));
    }

    #[derive(Debug, PartialEq)]
    struct Job(u32, Vec<Reason>);

    impl Escalation for Job {
        fn reasons(&self) -> &[Reason] {
            &self.1
        }
    }

    #[tokio::test]
    async fn push_takes_the_priority_from_the_reasons_and_wakes_pop() {
        let q = std::sync::Arc::new(TeacherQueue::new(2));
        let (open, mut ready) = watch::channel(true);
        assert!(q.is_idle());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop(&mut ready).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "pop waits for a job");
        let p = q.push(Job(1, vec![Reason::NoConfidence]));
        assert_eq!((p.len, p.dropped), (1, None));
        assert_eq!(waiter.await.unwrap().0, 1);
        assert!(!q.is_idle(), "busy with the job it took");
        // Reasons decide the order: a safety job goes before an audit pushed first.
        q.push(Job(2, vec![]));
        q.push(Job(
            3,
            vec![Reason::Safety {
                keyword: "fire".into(),
            }],
        ));
        let p = q.push(Job(4, vec![]));
        assert_eq!(
            p.dropped.map(|j| j.0),
            Some(2),
            "full: the oldest audit goes"
        );
        let mut ready = open.subscribe();
        assert_eq!(q.pop(&mut ready).await.0, 3);
        assert_eq!(
            q.put_back(Job(
                5,
                vec![Reason::Safety {
                    keyword: "fire".into()
                }]
            )),
            None
        );
        assert_eq!(q.drain().iter().map(|j| j.0).collect::<Vec<_>>(), [5, 4]);
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn pop_waits_for_the_gate() {
        let q = TeacherQueue::new(2);
        let (open, mut ready) = watch::channel(false);
        q.push(Job(1, vec![]));
        let r = tokio::time::timeout(std::time::Duration::from_millis(30), q.pop(&mut ready)).await;
        assert!(r.is_err(), "closed gate: no job");
        assert_eq!(q.len(), 1);
        open.send_replace(true);
        assert_eq!(q.pop(&mut ready).await.0, 1);
    }

    #[test]
    fn push_front_goes_first_within_priority() {
        let mut q = BoundedQueue::new(5);
        q.push(Confidence, 1);
        q.push_front(Confidence, 0);
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(1));
        assert!(q.is_empty());
    }
}
