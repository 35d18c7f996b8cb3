//! The hub: one engine, its upskill runner, and any number of attached clients.
//!
//! Every engine event is recorded (for snapshots) and fanned out to each client's
//! bounded queue. A client whose queue is full is not waited for: it is marked lagging,
//! gets nothing more, and on its next read receives a fresh snapshot (a resync) instead
//! of the events it missed. So a stalled console never slows the engine, and its memory
//! is bounded. The console that runs the engine itself attaches here the same way, in
//! memory, so every key does the same thing attached or not.

use super::protocol::{ClientMsg, ServerMsg, ServiceInfo, CAPABILITIES, PROTOCOL_VERSION};
use super::recorder::Recorder;
use crate::config::Config;
use crate::engine::{EngineHandle, EngineOptions};
use crate::event::{Command, Event, Role};
use crate::upskill::pipeline::UpskillEvent;
use crate::upskill::runner::UpskillRunner;
use chrono::Utc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Client requests waiting for the hub (all clients together).
const REQUEST_QUEUE: usize = 256;

/// How long a shutdown waits for the engine's `Stopped`.
const STOP_WAIT: Duration = Duration::from_secs(5);

struct Slot {
    id: u64,
    /// The user on the other end (the peer's credentials; this process's own user for a
    /// console of its own): whose "while you were away" clock its requests move.
    uid: u32,
    name: String,
    tx: mpsc::Sender<ServerMsg>,
    lagging: Arc<AtomicBool>,
}

struct State {
    recorder: Recorder,
    clients: Vec<Slot>,
}

/// Totals of the fan-out (logged at stop, shown by the benchmark).
#[derive(Debug, Default)]
pub struct FanoutStats {
    pub resyncs: AtomicU64,
    pub sent: AtomicU64,
    pub skipped_lagging: AtomicU64,
}

struct Shared {
    state: Mutex<State>,
    info: ServiceInfo,
    /// Requests from every client, bounded: beyond it a request is refused (said to its
    /// client), so a flood of lines cannot grow the service's memory.
    requests: mpsc::Sender<(u64, ClientMsg)>,
    /// `eval` requests: one at a time, a bounded queue, cancelled with their client.
    evals: super::evals::Evals,
    /// Learned cases saved in the last minute (every console together).
    save_limit: Mutex<crate::learn::console::SaveLimit>,
    /// Messages queued per client (`[service] client_queue`).
    queue: usize,
    next_id: AtomicU64,
    stats: FanoutStats,
}

impl Shared {
    /// Record and fan out; never waits for a client.
    fn broadcast(&self, msg: ServerMsg) {
        let mut st = self.state.lock().expect("hub lock");
        match &msg {
            ServerMsg::Event(ev) => st.recorder.record(ev),
            ServerMsg::Upskill(ev) => st.recorder.record_upskill(ev),
            ServerMsg::Broker { .. } => st.recorder.record_broker(&msg),
            _ => {}
        }
        st.clients.retain(|c| {
            if c.lagging.load(Ordering::Relaxed) {
                self.stats.skipped_lagging.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            match c.tx.try_send(msg.clone()) {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    c.lagging.store(true, Ordering::Relaxed);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// Hand a client's request to the hub; false when the hub has gone.
    fn request(&self, id: u64, msg: ClientMsg) -> bool {
        match self.requests.try_send((id, msg)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.reply(
                    id,
                    ServerMsg::Notice {
                        text: format!(
                            "the service is busy ({REQUEST_QUEUE} requests waiting): this one was dropped; send fewer"
                        ),
                        warning: true,
                    },
                );
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The user of client `id` (None once it has gone).
    fn uid_of(&self, id: u64) -> Option<u32> {
        let st = self.state.lock().expect("hub lock");
        st.clients.iter().find(|c| c.id == id).map(|c| c.uid)
    }

    /// One client's reply (dropped when its queue is full: it will resync anyway).
    fn reply(&self, id: u64, msg: ServerMsg) {
        let st = self.state.lock().expect("hub lock");
        if let Some(c) = st.clients.iter().find(|c| c.id == id) {
            let _ = c.tx.try_send(msg);
        }
    }
}

/// A client's end: what the hub sends it, and a way to send it requests.
pub struct Link {
    id: u64,
    rx: mpsc::Receiver<ServerMsg>,
    lagging: Arc<AtomicBool>,
    shared: Arc<Shared>,
    /// The snapshot taken at attach, handed out by the first `recv`.
    pending: Option<Vec<ServerMsg>>,
}

impl Link {
    /// The next messages: the snapshot, one live message, or (after falling behind) a
    /// fresh snapshot. `None` when the hub has gone.
    pub async fn recv(&mut self) -> Option<Vec<ServerMsg>> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        if self.lagging.load(Ordering::Relaxed) {
            return Some(self.resync());
        }
        self.rx.recv().await.map(|m| vec![m])
    }

    /// Whatever is queued now, without waiting (a burst of tokens before one redraw).
    pub fn try_recv(&mut self) -> Option<Vec<ServerMsg>> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        if self.lagging.load(Ordering::Relaxed) {
            return Some(self.resync());
        }
        self.rx.try_recv().ok().map(|m| vec![m])
    }

    fn resync(&mut self) -> Vec<ServerMsg> {
        // What is queued is older than the snapshot: drop it. Under the hub's lock, so no
        // event lands between the snapshot and the queue.
        let st = self.shared.state.lock().expect("hub lock");
        while self.rx.try_recv().is_ok() {}
        self.lagging.store(false, Ordering::Relaxed);
        self.shared.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        st.recorder.snapshot(true)
    }

    /// Send a request (an engine command, an upskill action, a learned case).
    pub fn send(&self, msg: ClientMsg) -> bool {
        self.shared.request(self.id, msg)
    }

    pub fn info(&self) -> &ServiceInfo {
        &self.shared.info
    }

    /// A sending end that can live in another task.
    pub fn requester(&self) -> Requester {
        Requester {
            id: self.id,
            shared: self.shared.clone(),
        }
    }
}

/// Sends a client's requests to the hub.
#[derive(Clone)]
pub struct Requester {
    id: u64,
    shared: Arc<Shared>,
}

impl Requester {
    pub fn send(&self, msg: ClientMsg) -> bool {
        self.shared.request(self.id, msg)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.clients.retain(|c| c.id != self.id);
        }
        // Its evals, waiting or running, are nobody's now.
        self.shared.evals.cancel_client(self.id);
    }
}

/// The running hub.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    done: watch::Receiver<bool>,
}

impl Hub {
    /// Start the engine and the hub around it.
    pub fn start(
        config: Config,
        options: EngineOptions,
    ) -> Result<(Hub, JoinHandle<()>), crate::engine::EngineError> {
        let engine = crate::engine::start(config.clone(), options)?;
        let (requests, requests_rx) = mpsc::channel(REQUEST_QUEUE);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                recorder: Recorder::new(config.console.history),
                clients: Vec::new(),
            }),
            info: ServiceInfo {
                protocol: PROTOCOL_VERSION,
                pid: std::process::id(),
                started_at: Utc::now(),
                device: config.device.name.clone(),
                version: env!("CARGO_PKG_VERSION").into(),
                capabilities: CAPABILITIES.iter().map(|s| s.to_string()).collect(),
            },
            requests,
            evals: Default::default(),
            save_limit: Default::default(),
            queue: config.service.client_queue,
            next_id: AtomicU64::new(1),
            stats: FanoutStats::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (done_tx, done) = watch::channel(false);
        let task = tokio::spawn(run(
            shared.clone(),
            config,
            engine,
            requests_rx,
            stop_rx,
            done_tx,
        ));
        Ok((Hub { shared, stop, done }, task))
    }

    /// Attach a client of this process's own user: its snapshot comes first, then the
    /// live messages.
    pub fn connect(&self, name: &str) -> Link {
        self.connect_as(name, super::socket::my_uid())
    }

    /// Attach a client of user `uid` (the peer's credentials).
    pub fn connect_as(&self, name: &str, uid: u32) -> Link {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.shared.queue.max(16));
        let lagging = Arc::new(AtomicBool::new(false));
        let mut st = self.shared.state.lock().expect("hub lock");
        let snapshot = st.recorder.snapshot(false);
        st.clients.push(Slot {
            id,
            uid,
            name: name.into(),
            tx,
            lagging: lagging.clone(),
        });
        drop(st);
        Link {
            id,
            rx,
            lagging,
            shared: self.shared.clone(),
            pending: Some(snapshot),
        }
    }

    pub fn info(&self) -> &ServiceInfo {
        &self.shared.info
    }

    pub fn clients(&self) -> Vec<String> {
        let st = self.shared.state.lock().expect("hub lock");
        st.clients.iter().map(|c| c.name.clone()).collect()
    }

    pub fn stats(&self) -> &FanoutStats {
        &self.shared.stats
    }

    /// Stop the engine (the log is flushed and `Stopped` sent) and wait for the hub.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let mut done = self.done.clone();
        let _ = tokio::time::timeout(STOP_WAIT + Duration::from_secs(1), async {
            while !*done.borrow_and_update() {
                if done.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
    }

    /// Why the engine stopped by itself (see `Recorder::stop_failure`).
    pub fn stop_failure(&self) -> Option<Option<String>> {
        self.shared
            .state
            .lock()
            .expect("hub lock")
            .recorder
            .stop_failure()
    }

    /// The hub has finished (the engine stopped).
    pub fn finished(&self) -> bool {
        *self.done.borrow()
    }
}

async fn run(
    shared: Arc<Shared>,
    config: Config,
    mut engine: EngineHandle,
    mut requests: mpsc::Receiver<(u64, ClientMsg)>,
    mut stop: watch::Receiver<bool>,
    done: watch::Sender<bool>,
) {
    let (upskill_tx, mut upskill_rx) = mpsc::unbounded_channel();
    let mut runner = UpskillRunner::new(config.clone(), Some(engine.gates.clone()));
    // `[mqtt] url` set: every event also goes to the broker (never waiting for it); its
    // notices become warnings (logged, shown); its state goes to the consoles.
    let mut bridge = crate::mqtt::Bridge::start(&config, engine.commands.clone());
    let mut notices = bridge.as_mut().and_then(|b| b.take_notices());
    let mut broker = bridge.as_ref().map(|b| b.watch());
    let mut broker_shown = BrokerShown::default();
    loop {
        tokio::select! {
            Some(n) = next_notice(&mut notices) => {
                let _ = engine.commands.send(Command::Warn(n));
            }
            Some(status) = broker_changed(&mut broker) => {
                if let Some(msg) = broker_shown.update(&status) {
                    shared.broadcast(msg);
                }
            }
            ev = engine.events.recv() => match ev {
                Some(ev) => {
                    if let Some(b) = &bridge {
                        b.send(&ev);
                    }
                    let last = matches!(ev, Event::Stopped { .. });
                    shared.broadcast(ServerMsg::Event(ev));
                    if last {
                        break;
                    }
                }
                None => break,
            },
            Some(ev) = upskill_rx.recv() => {
                runner.observe(&ev);
                shared.broadcast(ServerMsg::Upskill(ev));
            }
            Some((id, msg)) = requests.recv() => {
                handle(&shared, &config, &engine, &mut runner, &upskill_tx, id, msg);
            }
            _ = stop.changed() => {
                runner.stop().await;
                // Report what the cancelled run said before the engine's last words.
                while let Ok(ev) = upskill_rx.try_recv() {
                    shared.broadcast(ServerMsg::Upskill(ev));
                }
                let _ = engine.commands.send(Command::Shutdown);
                let deadline = tokio::time::sleep(STOP_WAIT);
                tokio::pin!(deadline);
                loop {
                    tokio::select! {
                        ev = engine.events.recv() => match ev {
                            Some(ev) => {
                                if let Some(b) = &bridge {
                                    b.send(&ev);
                                }
                                let last = matches!(ev, Event::Stopped { .. });
                                shared.broadcast(ServerMsg::Event(ev));
                                if last { break; }
                            }
                            None => break,
                        },
                        _ = &mut deadline => break,
                    }
                }
                break;
            }
        }
    }
    if let Some(b) = bridge.take() {
        // Publishes `offline` and disconnects cleanly (no last will).
        b.stop().await;
    }
    let _ = done.send(true);
    // Clients see their queue close after the last message.
    shared.state.lock().expect("hub lock").clients.clear();
}

/// One client request.
fn handle(
    shared: &Arc<Shared>,
    config: &Config,
    engine: &EngineHandle,
    runner: &mut UpskillRunner,
    upskill_tx: &mpsc::UnboundedSender<UpskillEvent>,
    id: u64,
    msg: ClientMsg,
) {
    if let Some(cmd) = msg.engine_command() {
        if engine.commands.send(cmd).is_err() {
            notice(shared, id, "the engine is not running".into(), true);
        }
        return;
    }
    match msg {
        ClientMsg::Hello { .. } => notice(shared, id, "already attached".into(), true),
        ClientMsg::UpskillStart {
            candidates,
            auto_apply,
        } => {
            if let Err(e) = runner.start(candidates, auto_apply, upskill_tx.clone()) {
                shared.reply(id, ServerMsg::UpskillRefused(e));
            }
        }
        ClientMsg::UpskillCancel => {
            if !runner.cancel() {
                // Nothing runs after all: settle the screen.
                shared.reply(id, ServerMsg::Upskill(UpskillEvent::Cancelled));
            }
        }
        ClientMsg::UpskillApply { row } => {
            let skill = config.skill_path();
            let ev = UpskillEvent::Applied {
                row,
                result: runner
                    .apply(row)
                    .map(|h| h.display().to_string())
                    .map_err(|e| e.to_string()),
            };
            match &ev {
                UpskillEvent::Applied { result: Ok(_), .. } => notice(
                    shared,
                    id,
                    format!("saved {}; used from the next frame", skill.display()),
                    false,
                ),
                UpskillEvent::Applied { result: Err(e), .. } => {
                    notice(shared, id, format!("could not save the skill: {e}"), true)
                }
                _ => {}
            }
            shared.broadcast(ServerMsg::Upskill(ev));
        }
        ClientMsg::SaveLearned {
            seq,
            captured_at,
            expect,
            forbid,
            safety,
        } => {
            let frame = shared
                .state
                .lock()
                .expect("hub lock")
                .recorder
                .frame_of(seq);
            let edit = crate::learn::console::LearnEdit {
                seq,
                captured_at,
                expect,
                forbid,
                safety,
            };
            let mut limit = shared.save_limit.lock().unwrap_or_else(|e| e.into_inner());
            let (text, warning) = crate::learn::console::save(config, &edit, frame, &mut limit);
            drop(limit);
            notice(shared, id, text, warning);
        }
        ClientMsg::Eval { skill } => {
            let job = {
                let shared = shared.clone();
                let config = config.clone();
                let gates = engine.gates.clone();
                Box::pin(async move {
                    let result =
                        match crate::model::ModelClient::new(&config.student, Role::Student) {
                            Ok(c) => {
                                let client = gates.background(c);
                                crate::eval::skill_score::score_to_json(&config, skill, &client)
                                    .await
                            }
                            Err(e) => Err(format!("cannot set up the student client: {e}")),
                        };
                    shared.reply(id, ServerMsg::EvalDone { result });
                })
            };
            if let Err(why) = shared.evals.submit(id, job) {
                shared.reply(id, ServerMsg::EvalDone { result: Err(why) });
            }
        }
        ClientMsg::History { .. }
        | ClientMsg::HistoryDetail { .. }
        | ClientMsg::HistoryFrame { .. }
        | ClientMsg::Away
        | ClientMsg::Here => {
            // Off the async threads, on connections of their own, a few at a time: a
            // history request never holds up the engine or the other consoles.
            let replies = shared.clone();
            super::store_requests::spawn(config, shared.uid_of(id), msg, move |m| {
                replies.reply(id, m)
            });
        }
        ClientMsg::Escalate
        | ClientMsg::SetPaused { .. }
        | ClientMsg::Ack { .. }
        | ClientMsg::SetWatches { .. } => {
            unreachable!("engine commands")
        }
    }
}

fn notice(shared: &Shared, id: u64, text: String, warning: bool) {
    shared.reply(id, ServerMsg::Notice { text, warning });
}

/// The next bridge notice; pending forever without a bridge (or once it has gone).
async fn next_notice(notices: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match notices {
        Some(n) => match n.recv().await {
            Some(s) => Some(s),
            None => {
                *notices = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// The broker's state when it changes; pending forever without a bridge.
async fn broker_changed(
    broker: &mut Option<watch::Receiver<crate::mqtt::BrokerStatus>>,
) -> Option<crate::mqtt::BrokerStatus> {
    match broker {
        Some(w) => match w.changed().await {
            Ok(()) => Some(w.borrow_and_update().clone()),
            Err(_) => {
                *broker = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// What the consoles were last told about the broker: a new state at once, a new count
/// of waiting messages at most once a second.
#[derive(Default)]
struct BrokerShown {
    last: Option<(String, bool)>,
    at: Option<std::time::Instant>,
}

impl BrokerShown {
    fn update(&mut self, status: &crate::mqtt::BrokerStatus) -> Option<ServerMsg> {
        let connected = status.state == crate::mqtt::LinkState::Connected;
        let label = status.label();
        let same_state = self.last.as_ref().is_some_and(|(_, c)| *c == connected);
        let recent = self
            .at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if self.last.as_ref().is_some_and(|(l, _)| *l == label) || (same_state && recent) {
            return None;
        }
        self.last = Some((label.clone(), connected));
        self.at = Some(std::time::Instant::now());
        Some(ServerMsg::Broker { label, connected })
    }
}
