//! The bridge: engine events in (a bounded queue, never blocking the caller), MQTT
//! messages out through the bounded [`Outbox`], broker commands back to the engine, and
//! the link task that connects, reconnects with backoff and says how the broker is doing.

mod alerts;
mod commands;

use super::link::{link_loop, options, BrokerStatus, Link, LinkState};
use super::outbox::{Msg, Outbox, MAX_BUFFER_BYTES};
use super::payload::{event_line, session_id, DeviceState};
use super::topics::{ha_status, Topics};
use crate::config::Config;
use crate::event::{Command, Event};
use crate::frame::PreparedFrame;
use crate::record::notify::RateLimit;
use chrono::{DateTime, Utc};
use rumqttc::{AsyncClient, QoS};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// Events waiting for the bridge; beyond this they are dropped (counted), never waited for.
pub const EVENT_QUEUE: usize = 1024;
/// Requests handed to the MQTT client at a time (the rest wait in the outbox).
const CLIENT_QUEUE: usize = 64;
/// The state topic is published at most this often.
const STATE_EVERY: Duration = Duration::from_secs(1);
/// Frames remembered for snapshots and alert times.
const FRAMES_KEPT: usize = 16;
/// How long a clean stop may take (flush, `offline`, disconnect).
const STOP_LIMIT: Duration = Duration::from_secs(3);
/// Home Assistant's `online` re-publishes the device at most this often.
const REBIRTH_EVERY: Duration = Duration::from_secs(1);

/// Starts the bridge.
pub struct Bridge;

/// What a face holds while the bridge runs.
pub struct BridgeHandle {
    tx: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
    status: watch::Receiver<BrokerStatus>,
    notices: Option<mpsc::UnboundedReceiver<String>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Bridge {
    /// Start reporting to `[mqtt] url` (None when it is empty). Call inside a tokio runtime.
    /// Broker commands (`cmd/escalate`, `cmd/pause`, `cmd/resume`) go to `commands`.
    pub fn start(
        config: &Config,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Option<BridgeHandle> {
        let m = &config.mqtt;
        if !m.enabled() {
            return None;
        }
        let device = config.device.name.clone();
        let topics = Topics::new(&m.topic_prefix, &device);
        let (status_tx, status_rx) = watch::channel(BrokerStatus {
            url: super::config::parse_url(&m.url)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| m.url.clone()),
            state: LinkState::Connecting,
            detail: String::new(),
            buffered: 0,
            dropped: 0,
        });
        let (notice_tx, notice_rx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let dropped = Arc::new(AtomicU64::new(0));
        let (link_tx, link_rx) = mpsc::unbounded_channel();
        let client = match options(m, &device, Some((topics.available(), "offline"))) {
            Ok((opts, url)) => {
                let (client, eventloop) = AsyncClient::new(opts, CLIENT_QUEUE);
                tokio::spawn(link_loop(eventloop, m.clone(), url, link_tx));
                Some(client)
            }
            Err(detail) => {
                // A TLS setup that cannot work (ca_file unreadable): say so, keep counting.
                let _ = notice_tx.send(format!("mqtt: {detail}"));
                status_tx.send_modify(|s| {
                    s.state = LinkState::Refused;
                    s.detail = detail;
                });
                None
            }
        };
        let alert_state = Msg::new(
            topics.alert_state(),
            super::incidents::alert_state_payload(false),
            true,
        );
        let run = Run {
            device: device.clone(),
            discovery_prefix: m.discovery_prefix.clone(),
            save_frames: config.privacy.save_frames,
            skills_dir: config.paths.skills.clone(),
            client,
            outbox: Outbox::new(m.buffer_messages, MAX_BUFFER_BYTES),
            connected: false,
            state: DeviceState::new(&device),
            state_dirty: true,
            state_sent: None,
            frames: VecDeque::new(),
            escalated: VecDeque::new(),
            limit: RateLimit::new(Duration::from_secs(config.notify.min_interval_secs)),
            retained: vec![alert_state],
            alert_on: false,
            rebirth: None,
            rebirth_pending: false,
            incidents: super::incidents::Incidents::new(&config.notify.on),
            watch_topics: super::watches::WatchTopics::default(),
            status: status_tx,
            notices: notice_tx,
            dropped_events: dropped.clone(),
            outage_dropped: 0,
            commands,
            command_said: None,
            topics,
        };
        let task = tokio::spawn(run.run(rx, link_rx, stop_rx));
        Some(BridgeHandle {
            tx,
            dropped,
            status: status_rx,
            notices: Some(notice_rx),
            stop: Some(stop_tx),
            task,
        })
    }
}

impl BridgeHandle {
    /// Hand an event to the bridge. Never waits: when its queue is full the event is
    /// dropped and counted (the session log has it anyway).
    pub fn send(&self, ev: &Event) {
        if matches!(ev, Event::StudentToken { .. } | Event::WarmUp { .. }) {
            return;
        }
        if self.tx.try_send(ev.clone()).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How the broker is doing now.
    pub fn status(&self) -> BrokerStatus {
        self.status.borrow().clone()
    }

    /// Changes of [`status`](Self::status), for a status bar.
    pub fn watch(&self) -> watch::Receiver<BrokerStatus> {
        self.status.clone()
    }

    /// One-line messages for the face (connected, lost, dropped messages, commands).
    pub fn take_notices(&mut self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.notices.take()
    }

    /// Clean stop: what is queued goes out, `offline` is published, then a disconnect
    /// (so the broker does not send the last will). Waits at most a few seconds.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = tokio::time::timeout(STOP_LIMIT + Duration::from_secs(1), &mut self.task).await;
        self.task.abort();
    }
}

struct Run {
    device: String,
    topics: Topics,
    discovery_prefix: String,
    save_frames: bool,
    skills_dir: PathBuf,
    client: Option<AsyncClient>,
    outbox: Outbox,
    connected: bool,
    state: DeviceState,
    state_dirty: bool,
    state_sent: Option<Instant>,
    /// `(seq, captured_at, image)` of the last frames taken.
    frames: VecDeque<(u64, DateTime<Utc>, Option<Arc<PreparedFrame>>)>,
    /// `(seq, reasons)` of the last escalations.
    escalated: VecDeque<(u64, Vec<String>)>,
    limit: RateLimit,
    /// Open incidents (the retained `incident` topic) and the alerts their changes make.
    incidents: super::incidents::Incidents,
    /// The watches the broker knows (their state topics and binary sensors).
    watch_topics: super::watches::WatchTopics,
    /// The retained messages that describe the device now (snapshot), sent again after a
    /// reconnect (a restarted broker forgets them) and when Home Assistant comes online.
    retained: Vec<Msg>,
    /// What the alert state topic says now: `ON` while an incident is open.
    alert_on: bool,
    /// When the device was last described again for Home Assistant's `online`, and
    /// whether another `online` came since (served at most every [`REBIRTH_EVERY`]).
    rebirth: Option<Instant>,
    rebirth_pending: bool,
    status: watch::Sender<BrokerStatus>,
    notices: mpsc::UnboundedSender<String>,
    dropped_events: Arc<AtomicU64>,
    /// Messages dropped since the connection was lost.
    outage_dropped: u64,
    commands: mpsc::UnboundedSender<Command>,
    /// When a command was last said, and how many came since (a flood of commands is
    /// one notice a second, not one each).
    command_said: Option<(Instant, u64)>,
}

impl Run {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        mut link: mpsc::UnboundedReceiver<Link>,
        mut stop: oneshot::Receiver<()>,
    ) {
        self.refresh_skill("built-in");
        let mut link_open = true;
        loop {
            let wait = if self.connected && !self.outbox.is_empty() {
                Duration::from_millis(20)
            } else if self.state_dirty {
                STATE_EVERY
                    .saturating_sub(self.state_sent.map_or(STATE_EVERY, |t| t.elapsed()))
                    .max(Duration::from_millis(20))
            } else if self.rebirth_pending {
                REBIRTH_EVERY
            } else {
                Duration::from_secs(5)
            };
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => break,
                },
                l = link.recv(), if link_open => match l {
                    Some(l) => self.on_link(l),
                    None => {
                        link_open = false;
                        self.connected = false;
                    }
                },
                _ = &mut stop => break,
                _ = tokio::time::sleep(wait) => {}
            }
            self.tick();
        }
        // Everything the face handed over before the stop.
        while let Ok(ev) = rx.try_recv() {
            self.on_event(ev);
        }
        self.clean_stop(&mut link).await;
    }

    fn tick(&mut self) {
        if self.rebirth_pending && self.rebirth.is_none_or(|t| t.elapsed() >= REBIRTH_EVERY) {
            self.rebirth_pending = false;
            self.rebirth = Some(Instant::now());
            self.describe();
        }
        if self.state_dirty && self.state_sent.is_none_or(|t| t.elapsed() >= STATE_EVERY) {
            self.publish_state();
        }
        self.flush();
        self.report_status();
    }

    fn publish_state(&mut self) {
        self.state.counters.dropped_events = self.dropped_events.load(Ordering::Relaxed);
        self.state.counters.dropped_messages = self.outbox.dropped();
        if let Ok(json) = serde_json::to_string(&self.state) {
            let json = crate::reading::sanitize::escape_json_invisibles(json);
            self.queue(Msg::new(self.topics.state(), json, true));
        }
        self.state_dirty = false;
        self.state_sent = Some(Instant::now());
    }

    /// Queue a retained message and keep it to describe the device again after a
    /// reconnect or Home Assistant's `online`; an empty (clearing) one is sent once and
    /// forgotten.
    fn publish_retained(&mut self, m: Msg) {
        self.retained.retain(|r| r.topic != m.topic);
        if !m.payload.is_empty() {
            self.retained.push(m.clone());
        }
        self.queue(m);
    }

    fn queue(&mut self, m: Msg) {
        let dropped = self.outbox.push(m);
        if dropped > 0 {
            if self.outage_dropped == 0 {
                let _ = self.notices.send(format!(
                    "mqtt: the buffer is full ({} messages): dropping the oldest until the \
                     broker is back (the session log has everything)",
                    self.outbox.len()
                ));
            }
            self.outage_dropped += dropped;
            self.state_dirty = true;
        }
    }

    /// Hand queued messages to the client while connected (as many as it takes).
    fn flush(&mut self) {
        let Some(client) = &self.client else { return };
        if !self.connected {
            return;
        }
        while let Some(m) = self.outbox.front() {
            match client.try_publish(
                m.topic.clone(),
                QoS::AtLeastOnce,
                m.retain,
                m.payload.clone(),
            ) {
                Ok(()) => {
                    self.outbox.pop();
                }
                Err(_) => break,
            }
        }
    }

    fn report_status(&mut self) {
        let buffered = self.outbox.len();
        let dropped = self.outbox.dropped() + self.dropped_events.load(Ordering::Relaxed);
        self.status.send_if_modified(|s| {
            let changed = s.buffered != buffered || s.dropped != dropped;
            s.buffered = buffered;
            s.dropped = dropped;
            changed
        });
    }

    fn set_link(&mut self, state: LinkState, detail: String) {
        let url = self.status.borrow().url.clone();
        let changed = self.status.send_if_modified(|s| {
            let changed = s.state != state || s.detail != detail;
            s.state = state;
            s.detail = detail.clone();
            changed
        });
        if changed {
            let _ = self.notices.send(match state {
                LinkState::Connected => format!("mqtt: connected to {url}"),
                LinkState::Stopped => format!("mqtt: disconnected from {url}"),
                _ => format!("mqtt {}: {detail} (monitoring goes on)", state.label()),
            });
        }
    }

    fn on_link(&mut self, l: Link) {
        match l {
            Link::Connected => {
                self.connected = true;
                if self.outage_dropped > 0 {
                    let _ = self.notices.send(format!(
                        "mqtt: {} messages were dropped while the broker was away ({} in all)",
                        self.outage_dropped,
                        self.outbox.dropped()
                    ));
                    self.outage_dropped = 0;
                }
                self.set_link(LinkState::Connected, String::new());
                self.on_connect();
            }
            Link::Message(p) => self.on_message(p),
            Link::Down {
                state,
                detail,
                returned,
                retry_in,
            } => {
                self.connected = false;
                let n = self.outbox.push_front_all(returned);
                self.outage_dropped += n;
                self.set_link(
                    state,
                    format!(
                        "{detail}; retrying in {:.0} s",
                        retry_in.as_secs_f64().ceil()
                    ),
                );
            }
            Link::Closed => self.connected = false,
        }
    }

    /// A (new) session: say we are online, listen for commands (and for Home Assistant's
    /// birth message), describe the device.
    fn on_connect(&mut self) {
        let Some(client) = &self.client else { return };
        let _ = client.try_publish(self.topics.available(), QoS::AtLeastOnce, true, "online");
        let _ = client.try_subscribe(self.topics.cmd_filter(), QoS::AtLeastOnce);
        if !self.discovery_prefix.is_empty() {
            let _ = client.try_subscribe(ha_status(&self.discovery_prefix), QoS::AtLeastOnce);
        }
        self.describe();
    }

    /// The discovery configs and the retained states, ahead of the backlog; the state
    /// topic follows within a second.
    fn describe(&mut self) {
        let Some(client) = &self.client else { return };
        if !self.connected {
            return;
        }
        let mut first: Vec<Msg> =
            super::discovery::messages(&self.discovery_prefix, &self.topics, &self.device)
                .into_iter()
                .map(|(t, p)| Msg::new(t, p, true))
                .collect();
        first.extend(self.retained.iter().cloned());
        // Straight to the client (its queue is empty after a connect), ahead of the
        // backlog, so a full buffer never pushes them out.
        let mut left = Vec::new();
        for m in first {
            let r = client.try_publish(m.topic.clone(), QoS::AtLeastOnce, true, m.payload.clone());
            if r.is_err() {
                left.push(m);
            }
        }
        self.outbox.push_front_all(left);
        self.state_dirty = true;
    }

    fn refresh_skill(&mut self, name: &str) {
        self.state.skill = super::skill_info::skill_info(&self.skills_dir, name);
        self.state_dirty = true;
    }

    fn on_event(&mut self, ev: Event) {
        if self.state.apply(&ev) {
            self.state_dirty = true;
        }
        match &ev {
            Event::Started { skill, .. } | Event::SkillLoaded { name: skill, .. } => {
                let skill = skill.clone();
                self.refresh_skill(&skill);
            }
            Event::FrameTaken {
                seq,
                captured_at,
                image,
                ..
            } => {
                if self.frames.len() == FRAMES_KEPT {
                    self.frames.pop_front();
                }
                self.frames.push_back((*seq, *captured_at, image.clone()));
            }
            Event::Escalated {
                seq,
                reasons,
                frame_path,
                ..
            } => {
                if self.escalated.len() == FRAMES_KEPT {
                    self.escalated.pop_front();
                }
                self.escalated
                    .push_back((*seq, reasons.iter().map(|r| r.to_string()).collect()));
                if self.save_frames {
                    self.snapshot(*seq, frame_path.as_deref());
                }
            }
            Event::TeacherVerdict { seq, verdict, .. } => {
                // Kept for the alert the incident change that follows may make.
                self.incidents.verdict(*seq, verdict);
            }
            Event::Incident(inc) => self.incident(inc),
            Event::Watches(w) => {
                let msgs =
                    self.watch_topics
                        .apply(w, &self.discovery_prefix, &self.topics, &self.device);
                for m in msgs {
                    self.publish_retained(m);
                }
            }
            _ => {}
        }
        let session = if self.state.session.is_empty() {
            session_id(Utc::now())
        } else {
            self.state.session.clone()
        };
        if let Some(line) = event_line(&ev, &session, &self.device, Utc::now()) {
            self.queue(Msg::new(self.topics.events(), line, false));
        }
    }

    /// Flush, publish `offline`, disconnect; bounded by [`STOP_LIMIT`].
    async fn clean_stop(&mut self, link: &mut mpsc::UnboundedReceiver<Link>) {
        let deadline = tokio::time::Instant::now() + STOP_LIMIT;
        if self.state_dirty {
            self.publish_state();
        }
        let mut disconnecting = false;
        loop {
            self.flush();
            if self.connected && self.outbox.is_empty() && !disconnecting {
                if let Some(c) = &self.client {
                    let online = self.topics.available();
                    let sent = c.try_publish(online, QoS::AtLeastOnce, true, "offline");
                    disconnecting = sent.is_ok() && c.try_disconnect().is_ok();
                }
            }
            if !self.connected && !disconnecting {
                break; // nothing to say goodbye to
            }
            tokio::select! {
                l = link.recv() => match l {
                    Some(Link::Closed) | None => break,
                    Some(l) => self.on_link(l),
                },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        self.report_status();
        self.set_link(LinkState::Stopped, String::new());
    }
}
