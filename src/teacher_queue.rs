//! The bounded teacher queue: highest priority first, oldest first within a priority;
//! when full, the lowest-priority oldest entry is dropped (possibly the new one).

use crate::policy::Priority;

#[derive(Debug)]
pub struct TeacherQueue<T> {
    cap: usize,
    next_order: u64,
    items: Vec<(Priority, u64, T)>,
}

impl<T> TeacherQueue<T> {
    pub fn new(cap: usize) -> Self {
        TeacherQueue {
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
        let mut q = TeacherQueue::new(10);
        q.push(Audit, 1);
        q.push(Confidence, 2);
        q.push(Safety, 3);
        q.push(Confidence, 4);
        q.push(Forced, 5);
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![5, 3, 2, 4, 1]);
    }

    #[test]
    fn full_queue_drops_lowest_oldest() {
        let mut q = TeacherQueue::new(3);
        assert_eq!(q.push(Audit, 1), None);
        assert_eq!(q.push(Audit, 2), None);
        assert_eq!(q.push(Safety, 3), None);
        assert_eq!(q.push(Confidence, 4), Some(1));
        assert_eq!(q.push(Forced, 5), Some(2));
        // Nothing lower than the new entry: the new audit itself is dropped.
        assert_eq!(q.push(Audit, 6), Some(6));
        assert_eq!(q.len(), 3);
        assert_eq!(q.position(|x| *x == 5), Some(1));
        assert_eq!(q.position(|x| *x == 4), Some(3));
    }

    #[test]
    fn push_front_goes_first_within_priority() {
        let mut q = TeacherQueue::new(5);
        q.push(Confidence, 1);
        q.push_front(Confidence, 0);
        assert_eq!(q.pop(), Some(0));
        assert_eq!(q.pop(), Some(1));
        assert!(q.is_empty());
    }
}
