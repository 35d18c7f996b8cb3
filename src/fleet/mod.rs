//! `gemmaedge-tui fleet`: a console over the broker alone (any machine, not only a Pi):
//! one row per device, the most urgent open incident and alerts first; Enter opens a
//! device's live log (its open incidents on top); `e` asks it to escalate. This file is
//! the run loop (terminal, keys, the MQTT link); the state machine is in `state.rs`, each
//! device's open incidents in `incidents.rs`, the drawing in `view.rs`.

pub mod incidents;
pub mod state;
pub mod view;

use crate::config::Config;
use crate::mqtt::link::{classify, options};
use crate::mqtt::topics::{fleet_filters, Cmd, Topics};
use futures_util::{Stream, StreamExt};
use ratatui::backend::Backend;
use ratatui::Terminal;
use rumqttc::{AsyncClient, EventLoop, Packet, QoS};
pub use state::{Action, Fleet, Key, View};
use std::time::Duration;
use tokio::sync::mpsc;

/// Largest message the fleet console reads (a device's state or event line is a few
/// KB); a bigger one is skipped and counted, the connection stays up.
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// Redraws at most this often (a burst of 50 devices' messages is one redraw).
pub const FRAME_EVERY: Duration = Duration::from_millis(100);

/// What the MQTT link tells the run loop.
#[derive(Debug)]
pub enum Incoming {
    /// The connection, in words (`mqtt://b:1883 connected`, `… refused: …`).
    Status(String),
    Message {
        topic: String,
        payload: Vec<u8>,
    },
}

/// Connect to `[mqtt]` with a client id of our own and follow every device's topics.
/// Returns the client (to publish commands) and what arrives.
pub fn connect(
    config: &Config,
) -> Result<(AsyncClient, mpsc::UnboundedReceiver<Incoming>), String> {
    let m = &config.mqtt;
    if !m.enabled() {
        return Err(
            "the fleet console needs a broker: set [mqtt] url (and username/password) in the config"
                .into(),
        );
    }
    let id = format!(
        "gemmaedge-fleet-{}-{}",
        crate::mqtt::topics::slug(&crate::config::hostname()),
        std::process::id()
    );
    let (opts, url) = options(m, &id, None)?;
    let (client, el) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(link(
        el,
        client.clone(),
        m.clone(),
        url,
        fleet_filters(&m.topic_prefix),
        tx,
    ));
    Ok((client, rx))
}

async fn link(
    mut el: EventLoop,
    client: AsyncClient,
    m: crate::mqtt::MqttConfig,
    url: crate::mqtt::config::BrokerUrl,
    filters: Vec<String>,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    let _ = tx.send(Incoming::Status(format!("{url} connecting…")));
    let mut backoff = crate::mqtt::link::Backoff::default();
    let mut skipped = 0u64;
    loop {
        let sent = match el.poll().await {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                backoff.connected(std::time::Instant::now());
                for f in &filters {
                    let _ = client.try_subscribe(f.clone(), QoS::AtMostOnce);
                }
                tx.send(Incoming::Status(format!("{url} connected")))
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(p))) if p.payload.len() > MAX_PAYLOAD => {
                // Read (the client's limit is higher) and dropped: counted, said once.
                skipped += 1;
                if skipped == 1 {
                    tx.send(Incoming::Status(format!(
                        "{url} connected; skipped a {} KB message on {} (over {} KB): \
                         cap messages with max_packet_size in the broker's config",
                        p.payload.len() / 1024,
                        crate::reading::sanitize::strip_controls(&p.topic),
                        MAX_PAYLOAD / 1024
                    )))
                } else {
                    Ok(())
                }
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => tx.send(Incoming::Message {
                topic: p.topic,
                payload: p.payload.to_vec(),
            }),
            Ok(_) => Ok(()),
            Err(e) => {
                let wait = backoff.failed(std::time::Instant::now());
                let (state, detail) = classify(&e, &m, &url);
                let sent = tx.send(Incoming::Status(format!(
                    "mqtt {}: {detail}; retrying in {:.0} s",
                    state.label(),
                    wait.as_secs_f64().ceil()
                )));
                tokio::time::sleep(wait).await;
                sent
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Publish `cmd/escalate` to a device.
pub fn escalate(client: &AsyncClient, prefix: &str, device: &str) -> Result<(), String> {
    client
        .try_publish(
            Topics::new(prefix, device).cmd(Cmd::Escalate),
            QoS::AtLeastOnce,
            false,
            "PRESS",
        )
        .map_err(|e| format!("cannot send the command: {e}"))
}

/// The loop: broker messages and keys change `fleet`, the screen is redrawn at most every
/// [`FRAME_EVERY`] (and once a second for the per-minute counts). `on_draw` runs after each
/// redraw (the bench measures latency there). Ends on `q` / Ctrl-C or when the keys end.
pub async fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    fleet: &mut Fleet,
    client: &AsyncClient,
    incoming: &mut mpsc::UnboundedReceiver<Incoming>,
    keys: &mut (impl Stream<Item = Key> + Unpin),
    mut on_draw: impl FnMut(&mut Fleet),
) -> Result<(), B::Error> {
    let mut dirty = true;
    let mut last_draw = tokio::time::Instant::now() - FRAME_EVERY;
    let mut link_open = true;
    loop {
        if dirty && last_draw.elapsed() >= FRAME_EVERY {
            let now = chrono::Utc::now();
            terminal.draw(|f| view::draw(f, fleet, now))?;
            last_draw = tokio::time::Instant::now();
            dirty = false;
            on_draw(fleet);
        }
        let wake = if dirty {
            last_draw + FRAME_EVERY
        } else {
            last_draw + Duration::from_secs(1)
        };
        tokio::select! {
            msg = incoming.recv(), if link_open => match msg {
                Some(Incoming::Status(s)) => {
                    fleet.broker = crate::reading::sanitize::for_screen(&s, 200);
                    dirty = true;
                }
                Some(Incoming::Message { topic, payload }) => {
                    dirty |= fleet.apply(&topic, &payload, chrono::Utc::now());
                    // Take what else has arrived before drawing.
                    while let Ok(m) = incoming.try_recv() {
                        match m {
                            Incoming::Message { topic, payload } => {
                                dirty |= fleet.apply(&topic, &payload, chrono::Utc::now());
                            }
                            Incoming::Status(s) => {
                                fleet.broker = crate::reading::sanitize::for_screen(&s, 200);
                                dirty = true;
                            }
                        }
                    }
                }
                None => link_open = false,
            },
            k = keys.next() => {
                let Some(k) = k else { return Ok(()) };
                match fleet.key(k) {
                    Action::Quit => return Ok(()),
                    Action::Escalate(d) => {
                        if let Err(e) = escalate(client, &fleet.prefix.clone(), &d) {
                            fleet.notice = Some(e);
                        }
                    }
                    Action::None => {}
                }
                dirty = true;
            }
            _ = tokio::time::sleep_until(wake) => {
                // Once a second the per-minute counts move on.
                if !dirty {
                    dirty = true;
                }
            }
        }
    }
}

/// The keys of a terminal.
fn terminal_keys() -> impl Stream<Item = Key> + Unpin {
    use crossterm::event::{Event as TEvent, KeyCode, KeyEventKind, KeyModifiers};
    crossterm::event::EventStream::new().filter_map(|ev| {
        let k = match ev {
            Ok(TEvent::Key(k)) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    Some(Key::CtrlC)
                }
                KeyCode::Char(c) => Some(Key::Char(c)),
                KeyCode::Up => Some(Key::Up),
                KeyCode::Down => Some(Key::Down),
                KeyCode::Enter => Some(Key::Enter),
                KeyCode::Esc | KeyCode::Backspace => Some(Key::Esc),
                _ => None,
            },
            _ => None,
        };
        std::future::ready(k)
    })
}

/// `gemmaedge-tui fleet`: returns the exit code.
pub async fn run(config: &Config) -> color_eyre::Result<i32> {
    let (client, mut incoming) = match connect(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gemmaedge-tui fleet: {e}");
            return Ok(crate::cli::EXIT_BAD_INPUT);
        }
    };
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!("gemmaedge-tui fleet: not a terminal (the fleet console draws a screen)");
        return Ok(crate::cli::EXIT_BAD_INPUT);
    }
    let mut fleet = Fleet::new(&config.mqtt.topic_prefix);
    let mut terminal = ratatui::try_init()?;
    let mut keys = terminal_keys();
    let r = run_loop(
        &mut terminal,
        &mut fleet,
        &client,
        &mut incoming,
        &mut keys,
        |_| {},
    )
    .await;
    ratatui::restore();
    let _ = client.try_disconnect();
    r?;
    Ok(0)
}
