//! Latest frame wins: the capture side replaces the pending frame; the student takes the
//! newest when it is free. Nothing queues up, so an answer is never about a stale frame.

use super::Frame;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    pending: Option<Frame>,
    /// Sequence number of the newest frame ever put.
    latest_seq: u64,
    /// Frames replaced before anyone took them, since the last take.
    superseded: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    inner: Mutex<Inner>,
    notify: Notify,
}

/// The capture side.
#[derive(Clone)]
pub struct SlotWriter(Arc<Shared>);

/// The student side.
#[derive(Clone)]
pub struct SlotReader(Arc<Shared>);

/// A taken frame and how many frames were skipped over since the previous take.
#[derive(Debug)]
pub struct Taken {
    pub frame: Frame,
    pub superseded: u64,
}

pub fn slot() -> (SlotWriter, SlotReader) {
    let s = Arc::new(Shared::default());
    (SlotWriter(s.clone()), SlotReader(s))
}

impl SlotWriter {
    /// Offer a frame; a pending older one is replaced (and counted as superseded).
    pub fn put(&self, frame: Frame) {
        {
            let mut g = self.0.inner.lock().unwrap_or_else(|e| e.into_inner());
            g.latest_seq = g.latest_seq.max(frame.seq);
            if g.pending.replace(frame).is_some() {
                g.superseded += 1;
            }
        }
        self.0.notify.notify_one();
    }

    /// No more frames will come; a waiting reader gets `None`.
    pub fn close(&self) {
        self.0
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.0.notify.notify_waiters();
        self.0.notify.notify_one();
    }
}

impl Drop for SlotWriter {
    fn drop(&mut self) {
        // Only the last writer closes the slot.
        if Arc::strong_count(&self.0) <= 2 {
            self.close();
        }
    }
}

impl SlotReader {
    /// The pending frame, if any, without waiting.
    pub fn try_take(&self) -> Option<Taken> {
        let mut g = self.0.inner.lock().unwrap_or_else(|e| e.into_inner());
        let frame = g.pending.take()?;
        let superseded = std::mem::take(&mut g.superseded);
        Some(Taken { frame, superseded })
    }

    /// Wait for a frame; `None` once the writer closed and nothing is pending.
    pub async fn take(&self) -> Option<Taken> {
        loop {
            let notified = self.0.notify.notified();
            if let Some(t) = self.try_take() {
                return Some(t);
            }
            if self
                .0
                .inner
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .closed
            {
                return None;
            }
            notified.await;
        }
    }

    /// Sequence number of the newest frame captured so far.
    pub fn latest_seq(&self) -> u64 {
        self.0
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .latest_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::RawImage;

    fn frame(seq: u64) -> Frame {
        Frame {
            seq,
            captured_at: chrono::Utc::now(),
            label: format!("f{seq}"),
            raw: RawImage::Encoded(Arc::from(&b"x"[..])),
        }
    }

    #[test]
    fn newest_wins_and_superseded_is_counted() {
        let (w, r) = slot();
        w.put(frame(1));
        w.put(frame(2));
        w.put(frame(3));
        let t = r.try_take().unwrap();
        assert_eq!(t.frame.seq, 3);
        assert_eq!(t.superseded, 2);
        assert!(r.try_take().is_none());
        w.put(frame(4));
        let t = r.try_take().unwrap();
        assert_eq!((t.frame.seq, t.superseded), (4, 0));
        assert_eq!(r.latest_seq(), 4);
    }

    #[tokio::test]
    async fn take_waits_then_sees_close() {
        let (w, r) = slot();
        let h = tokio::spawn(async move { r.take().await.map(|t| t.frame.seq) });
        tokio::task::yield_now().await;
        w.put(frame(7));
        assert_eq!(h.await.unwrap(), Some(7));
        let (w, r) = slot();
        let h = tokio::spawn(async move { r.take().await.is_none() });
        tokio::task::yield_now().await;
        drop(w);
        assert!(h.await.unwrap());
    }
}
