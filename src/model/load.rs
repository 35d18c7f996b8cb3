//! What a client knows about its model's load state on an Ollama server: the calls it
//! makes (a call to an unloaded model loads it; a call that ends restarts the server's
//! `keep_alive` clock) and what `/api/ps` says. Shared by every clone of a client.

use crate::event::ModelLoad;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::watch;

#[derive(Debug)]
pub struct LoadTracker {
    state: watch::Sender<ModelLoad>,
    /// Calls to the model under way (chats and loads).
    in_flight: AtomicUsize,
    /// When the last call that worked ended: Ollama starts the `keep_alive` clock then.
    last_done: Mutex<Option<Instant>>,
}

impl Default for LoadTracker {
    fn default() -> Self {
        LoadTracker {
            state: watch::channel(ModelLoad::Unknown).0,
            in_flight: AtomicUsize::new(0),
            last_done: Mutex::new(None),
        }
    }
}

/// Marks a call under way; ends it when dropped (a call abandoned mid-way counts as failed).
pub(crate) struct CallGuard<'a> {
    tracker: &'a LoadTracker,
    ok: bool,
}

impl CallGuard<'_> {
    pub(crate) fn succeeded(mut self) {
        self.ok = true;
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.tracker.end(self.ok);
    }
}

impl LoadTracker {
    pub fn state(&self) -> ModelLoad {
        *self.state.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<ModelLoad> {
        self.state.subscribe()
    }

    fn set(&self, to: ModelLoad) {
        self.state.send_if_modified(|s| {
            let changed = *s != to;
            *s = to;
            changed
        });
    }

    /// A call goes to the server: one that finds the model unloaded loads it first.
    pub(crate) fn begin(&self) -> CallGuard<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.state.send_if_modified(|s| {
            let loads = matches!(*s, ModelLoad::NotLoaded | ModelLoad::Unknown);
            if loads {
                *s = ModelLoad::Loading;
            }
            loads
        });
        CallGuard {
            tracker: self,
            ok: false,
        }
    }

    fn end(&self, ok: bool) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if ok {
            *self.last_done.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            self.set(ModelLoad::Loaded);
        } else if self.in_flight() == 0 && self.state() == ModelLoad::Loading {
            // The call that was loading it failed: nobody knows until `/api/ps` says.
            self.set(ModelLoad::Unknown);
        }
    }

    /// A call under way is taking longer than a call to a loaded model would (a load
    /// request answers at once when the model is in memory): it is loading.
    pub fn loading(&self) {
        if self.in_flight() > 0 {
            self.set(ModelLoad::Loading);
        }
    }

    /// Calls under way.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// How long since the last call ended, when none is under way (None also when no call
    /// has worked yet).
    pub fn idle_for(&self) -> Option<Duration> {
        if self.in_flight() > 0 {
            return None;
        }
        self.last_done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }

    /// What `/api/ps` said, asked at `asked_at`: a call that ended after that knows better.
    pub fn observe(&self, listed: bool, asked_at: Instant) {
        let newer = self
            .last_done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t > asked_at);
        if newer {
            return;
        }
        let busy = self.in_flight() > 0;
        let to = match (listed, busy) {
            // Ollama lists a model while it loads: a load under way stays a load.
            (true, true) if self.state() == ModelLoad::Loading => ModelLoad::Loading,
            (true, _) => ModelLoad::Loaded,
            // A call under way to a model the server does not hold waits for its load.
            (false, true) => ModelLoad::Loading,
            (false, false) => ModelLoad::NotLoaded,
        };
        self.set(to);
    }
}

/// Is `model` among the models of an `/api/ps` reply? (`name` or `model`; `x` is `x:latest`.)
pub fn ps_lists(ps: &serde_json::Value, model: &str) -> Option<bool> {
    let models = ps.get("models")?.as_array()?;
    let want = |n: &str| n == model || (!model.contains(':') && n == format!("{model}:latest"));
    Some(models.iter().any(|m| {
        ["name", "model"]
            .iter()
            .filter_map(|k| m.get(*k).and_then(|v| v.as_str()))
            .any(want)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_ps_drive_the_state() {
        let t = LoadTracker::default();
        assert_eq!(t.state(), ModelLoad::Unknown);
        let before = Instant::now();
        t.observe(false, before);
        assert_eq!(t.state(), ModelLoad::NotLoaded);
        let call = t.begin();
        assert_eq!(
            t.state(),
            ModelLoad::Loading,
            "a call to an unloaded model loads it"
        );
        // Ollama lists a loading model: still loading.
        t.observe(true, Instant::now());
        assert_eq!(t.state(), ModelLoad::Loading);
        assert_eq!(t.idle_for(), None);
        call.succeeded();
        assert_eq!(t.state(), ModelLoad::Loaded);
        assert!(t.idle_for().is_some());
        // A /api/ps answer asked before that call ended is stale.
        t.observe(false, before);
        assert_eq!(t.state(), ModelLoad::Loaded);
        t.observe(false, Instant::now());
        assert_eq!(t.state(), ModelLoad::NotLoaded, "expired or evicted");
        // A failed load: unknown until /api/ps says.
        drop(t.begin());
        assert_eq!(t.state(), ModelLoad::Unknown);
    }

    #[test]
    fn ps_names() {
        let ps =
            serde_json::json!({"models": [{"name": "gemma4:latest", "model": "gemma4:latest"}]});
        assert_eq!(ps_lists(&ps, "gemma4"), Some(true));
        assert_eq!(ps_lists(&ps, "gemma4:latest"), Some(true));
        assert_eq!(ps_lists(&ps, "gemma4:26b"), Some(false));
        assert_eq!(ps_lists(&serde_json::json!({"x": 1}), "gemma4"), None);
    }
}
