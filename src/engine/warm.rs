//! Keeping the alert path warm: a warm-up loop per Ollama model.
//!
//! Ollama unloads a model `keep_alive` after its last call ends, and the next call then
//! waits for a cold start (minutes for a big teacher) before the verdict and the alert.
//! The loop loads the model when monitoring starts (the student loop waits for that, so
//! its first answer is about a fresh frame and is not a load), loads it again before a
//! finite `keep_alive` runs out (at half of it: a load request on a loaded model costs
//! nothing and restarts the server's clock), reloads it when `/api/ps` shows the server
//! dropped it (evicted for another model, restarted; at most once per `reload_gap`), and,
//! for the teacher, as soon as a safety keyword appears in the student's streamed answer
//! (with `policy.early_escalation` off; on, the early review itself loads it).
//! It also polls `/api/ps` gently and turns the client's load state into `ModelLoad`
//! events for the faces. Nothing of this runs for OpenAI-compatible hosts.

use super::shared::Shared;
use crate::config::{HostKind, KeepAliveSpan};
use crate::event::{Event, ModelLoad, Role, WarmReason};
use crate::model::{ModelClient, ModelError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The slowest `/api/ps` poll (a faster one when keep_alive is short).
const MAX_POLL: Duration = Duration::from_secs(15);
/// The most often a model the server dropped is reloaded (a machine shared with other
/// models could otherwise be made to swap back and forth).
const MAX_RELOAD_GAP: Duration = Duration::from_secs(60);
const MIN_TICK: Duration = Duration::from_secs(1);
/// A load request answers at once when the model is in memory; one still running after
/// this long is a load (shown as loading even when the model was thought loaded).
const LOAD_SHOWS_AFTER: Duration = Duration::from_millis(300);

/// When to warm and poll, from the host's config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct WarmPlan {
    /// Warm-ups at all (`warm_up`, and `keep_alive` not 0).
    pub warm: bool,
    /// Load again after this long without a call (half a finite keep_alive).
    pub rewarm_after: Option<Duration>,
    pub poll_every: Duration,
    pub reload_gap: Duration,
}

impl WarmPlan {
    pub(super) fn of(config: &crate::config::HostConfig) -> WarmPlan {
        let span = config
            .keep_alive
            .span()
            .unwrap_or(KeepAliveSpan::ServerDefault);
        let rewarm_after = match span {
            KeepAliveSpan::For(d) if !d.is_zero() => Some(d / 2),
            _ => None,
        };
        let tick = rewarm_after.map_or(MAX_POLL, |r| r.clamp(MIN_TICK, MAX_POLL));
        WarmPlan {
            warm: config.warm_up && span != KeepAliveSpan::For(Duration::ZERO),
            rewarm_after,
            poll_every: tick,
            reload_gap: rewarm_after.map_or(MAX_RELOAD_GAP, |r| r.clamp(MIN_TICK, MAX_RELOAD_GAP)),
        }
    }
}

/// Keep `client`'s model warm until the engine stops. `keywords`: safety keywords seen
/// mid-answer (teacher only). Sets `ready` after the start warm-up (or at once when there
/// is none).
pub(super) async fn warm_loop(
    shared: Arc<Shared>,
    client: ModelClient,
    mut keywords: Option<mpsc::UnboundedReceiver<(u64, String)>>,
    ready: Option<tokio::sync::watch::Sender<bool>>,
) {
    let role = client.role();
    let plan = WarmPlan::of(client.config());
    if client.config().kind == HostKind::Openai {
        // Says nothing about loading: no warm-ups, no state.
        if let Some(r) = &ready {
            r.send_replace(true);
        }
        return;
    }
    let gate = match role {
        Role::Student => &shared.student_health,
        Role::Teacher => &shared.teacher_health,
    };
    let online = || *gate.online.borrow();
    let mut stop = shared.stop.subscribe();
    let mut state_rx = client.load_state().subscribe();
    let mut loading_since: Option<Instant> = None;
    let mut shown_load = ModelLoad::Unknown;
    let mut warming: Option<JoinHandle<Result<(), ModelError>>> = None;
    // When the warm-up under way started (and whether it was already shown as loading).
    let mut last_warm: Option<Instant> = None;
    let mut warm_shown = false;
    let mut last_error = String::new();
    let mut next_poll = Instant::now();
    let mut ready = ready;

    let start_warm = |reason: WarmReason,
                      warming: &mut Option<JoinHandle<Result<(), ModelError>>>,
                      last_warm: &mut Option<Instant>| {
        shared.emitter.emit(Event::WarmUp { role, reason });
        *last_warm = Some(Instant::now());
        let c = client.clone();
        *warming = Some(tokio::spawn(async move { c.load().await }));
    };

    if plan.warm {
        start_warm(WarmReason::Start, &mut warming, &mut last_warm);
    } else if let Some(r) = ready.take() {
        r.send_replace(true);
    }

    loop {
        // The next wake-up: the next poll, or when keep_alive would need a warm-up.
        let now = Instant::now();
        let mut wake = next_poll;
        if let (Some(_), false, Some(t)) = (warming.as_ref(), warm_shown, last_warm) {
            wake = wake.min(t + LOAD_SHOWS_AFTER);
        }
        if let (true, Some(after), None, Some(idle)) = (
            plan.warm,
            plan.rewarm_after,
            warming.as_ref(),
            client.load_state().idle_for(),
        ) {
            wake = wake.min(now + after.saturating_sub(idle));
        }
        tokio::select! {
            _ = async { drop(stop.wait_for(|s| *s).await) } => {
                if let Some(w) = warming.take() {
                    w.abort();
                }
                return;
            }
            changed = state_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let state = *state_rx.borrow_and_update();
                let took_ms = match state {
                    ModelLoad::Loading => {
                        loading_since.get_or_insert_with(Instant::now);
                        None
                    }
                    ModelLoad::Loaded => loading_since.take().map(|t| t.elapsed().as_millis() as u64),
                    _ => {
                        loading_since = None;
                        None
                    }
                };
                // Unknown again (a load that failed, e.g. an unreachable server) is said
                // too, so no face keeps showing `loading…`; never as the first state.
                if state != ModelLoad::Unknown || shown_load != ModelLoad::Unknown {
                    shown_load = state;
                    shared.emitter.emit(Event::ModelLoad { role, state, took_ms });
                }
            }
            done = async { warming.as_mut().expect("guarded").await }, if warming.is_some() => {
                warming = None;
                warm_shown = false;
                if let Some(r) = ready.take() {
                    r.send_replace(true);
                }
                match done {
                    Ok(Ok(())) => last_error.clear(),
                    Ok(Err(e)) if e.is_unreachable() => {}
                    Ok(Err(e)) => {
                        let message = e.to_string();
                        if message != last_error {
                            shared.emitter.emit(Event::Warning {
                                message: format!(
                                    "{role}: cannot load {}: {}",
                                    client.model(),
                                    crate::model::error::with_hint(
                                        &message,
                                        &e.hint(role, client.model())
                                    )
                                ),
                            });
                            last_error = message;
                        }
                    }
                    Err(_) => {}
                }
            }
            Some((seq, keyword)) = async {
                match keywords.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                // A call under way holds the model (or is loading it): nothing to do.
                if plan.warm && warming.is_none() && client.load_state().in_flight() == 0 {
                    start_warm(WarmReason::Keyword { seq, keyword }, &mut warming, &mut last_warm);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                if let (Some(_), false, Some(t)) = (warming.as_ref(), warm_shown, last_warm) {
                    if now >= t + LOAD_SHOWS_AFTER {
                        warm_shown = true;
                        loading_since.get_or_insert(t);
                        client.load_state().loading();
                    }
                }
                if now >= next_poll {
                    next_poll = now + plan.poll_every;
                    let _ = client.loaded().await;
                }
                if !plan.warm || warming.is_some() || !online() {
                    continue;
                }
                let state = client.load_state();
                let due = plan
                    .rewarm_after
                    .zip(state.idle_for())
                    .is_some_and(|(after, idle)| idle >= after);
                let dropped = state.in_flight() == 0
                    && matches!(state.state(), ModelLoad::NotLoaded)
                    && last_warm.is_none_or(|t| t.elapsed() >= plan.reload_gap);
                if dropped {
                    start_warm(WarmReason::Dropped, &mut warming, &mut last_warm);
                } else if due {
                    start_warm(WarmReason::KeepAlive, &mut warming, &mut last_warm);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HostConfig, KeepAlive};

    fn plan(ka: KeepAlive, warm_up: bool) -> WarmPlan {
        WarmPlan::of(&HostConfig {
            keep_alive: ka,
            warm_up,
            ..HostConfig::default()
        })
    }

    #[test]
    fn plans() {
        let p = plan(KeepAlive::Text("30m".into()), true);
        assert!(p.warm);
        assert_eq!(p.rewarm_after, Some(Duration::from_secs(900)));
        assert_eq!(p.poll_every, MAX_POLL);
        assert_eq!(p.reload_gap, MAX_RELOAD_GAP);
        let p = plan(KeepAlive::Text("2s".into()), true);
        assert_eq!(p.rewarm_after, Some(Duration::from_secs(1)));
        assert_eq!(p.poll_every, Duration::from_secs(1));
        let p = plan(KeepAlive::Seconds(-1.0), true);
        assert_eq!((p.warm, p.rewarm_after), (true, None));
        assert!(
            !plan(KeepAlive::Seconds(0.0), true).warm,
            "0 unloads after each call"
        );
        assert!(!plan(KeepAlive::Text("30m".into()), false).warm);
    }
}
