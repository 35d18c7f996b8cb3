//! Where the engine's events go: to the face and, one JSON line each, to the session log
//! (which also keeps the escalated frames).

use crate::event::Event;
use crate::history::HistoryHandle;
use crate::record::session_log::SessionLog;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Sends events to the face and the session log.
pub(super) struct Emitter {
    tx: mpsc::UnboundedSender<Event>,
    log: Mutex<SessionLog>,
    /// The history store's writer (never waits; none when the store could not be opened).
    history: Option<HistoryHandle>,
}

impl Emitter {
    pub(super) fn new(
        tx: mpsc::UnboundedSender<Event>,
        log: SessionLog,
        history: Option<HistoryHandle>,
    ) -> Self {
        Emitter {
            tx,
            log: Mutex::new(log),
            history,
        }
    }

    pub(super) fn history(&self) -> Option<&HistoryHandle> {
        self.history.as_ref()
    }

    fn log(&self) -> MutexGuard<'_, SessionLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn emit(&self, ev: Event) {
        let failure = self.log().append(&ev).err();
        if let Some(h) = &self.history {
            h.send(&ev);
        }
        let _ = self.tx.send(ev);
        if let Some(message) = failure {
            let _ = self.tx.send(Event::Warning { message });
        }
    }

    /// A piece of the student's streamed answer: to the face only.
    pub(super) fn token(&self, seq: u64, text: &str) {
        let _ = self.tx.send(Event::StudentToken {
            seq,
            text: text.to_string(),
        });
    }

    /// Save an escalated frame under `logs/frames/`.
    pub(super) fn save_frame(&self, seq: u64, jpeg: &[u8]) -> std::io::Result<std::path::PathBuf> {
        self.log().save_frame(seq, jpeg)
    }

    /// Flush the session log to disk (at stop).
    pub(super) fn sync(&self) {
        self.log().sync();
        if let Some(h) = &self.history {
            h.stop();
        }
    }
}
