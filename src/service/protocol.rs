//! The control socket's wire format: newline-delimited JSON, one message per line,
//! versioned by a hello in each direction. Pure: encoding, decoding and their limits.
//!
//! A console sends `hello` first; the service answers with its own `hello` (or an
//! `error` naming both versions, then closes). The service then sends a snapshot
//! (`snapshot_begin`, the replayed messages, `snapshot_end`) and after it the live
//! messages. Engine events ride in `event` with the same fields as the session log's
//! lines; the frame a `frame_taken` event carries goes along as base64 JPEG.

use crate::event::{Command, Event};
use crate::frame::PreparedFrame;
use crate::upskill::pipeline::UpskillEvent;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bumped on any change a peer of the previous version would misread.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest line a console may send (a learned case with its fields is a few KiB).
pub const MAX_CLIENT_LINE: usize = 64 * 1024;
/// Longest line the service sends (an event with a frame: a 640 px JPEG in base64).
pub const MAX_SERVER_LINE: usize = 8 * 1024 * 1024;

/// What this service can do, named in its hello (a console may check for one).
pub const CAPABILITIES: &[&str] = &[
    "events", "frames", "commands", "upskill", "learn", "eval", "history",
];

fn yes() -> bool {
    true
}

/// Console → service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    Hello {
        protocol: u32,
        /// Who is attaching (shown in the service's log), e.g. `console`, `eval`.
        client: String,
    },
    /// `e`: escalate the current frame.
    Escalate,
    /// `p`: pause or resume capture.
    SetPaused { paused: bool },
    /// `k`: acknowledge an open incident (none named: every open one).
    Ack {
        #[serde(default)]
        incident: Option<u64>,
    },
    /// `w`: replace the watches (saved by the service to `skills/watches.toml`).
    SetWatches {
        watches: Vec<crate::watch::WatchSpec>,
    },
    /// `u`: start an upskill run in the service.
    UpskillStart {
        #[serde(default)]
        candidates: Option<usize>,
        /// Save a winner without asking (the console's `u`); `upskill` from a shell
        /// asks first and sends `upskill_apply`.
        #[serde(default = "yes")]
        auto_apply: bool,
    },
    /// Esc on the upskill screen: stop the run.
    UpskillCancel,
    /// `y` on a finished run's row: save it as the skill.
    UpskillApply { row: usize },
    /// `a` then Enter: the service appends this case (with the frame of `seq` it kept).
    SaveLearned {
        seq: u64,
        captured_at: DateTime<Utc>,
        expect: Vec<String>,
        forbid: Vec<String>,
        safety: bool,
    },
    /// Score the current skill (or this skill text) on the eval set through the
    /// service's student scheduler; the reply is one `eval_done`.
    Eval {
        #[serde(default)]
        skill: Option<String>,
    },
    /// One page of the history store, newest first (at most `history::paged::MAX_PAGE`
    /// items, older than `after`); the reply is one `history`.
    History {
        #[serde(default)]
        filter: crate::history::query::Filter,
        #[serde(default)]
        after: Option<crate::history::query::Cursor>,
        #[serde(default = "page_size")]
        limit: usize,
    },
    /// One incident with its frames (at most `history::paged::MAX_DETAIL_FRAMES`); the
    /// reply is one `history_detail`.
    HistoryDetail { incident: u64 },
    /// The saved JPEG of one history frame (by its row id, never a path); the reply is
    /// one `history_frame`.
    HistoryFrame { id: i64 },
    /// A console arrives: the reply is one `away` (the "while you were away" summary of
    /// the span since this user's consoles were last seen, when over 10 minutes).
    Away,
    /// A console is still here (every minute), or leaves cleanly; the reply is `here`.
    Here,
}

fn page_size() -> usize {
    50
}

impl ClientMsg {
    /// The engine command this message is, when it is one.
    pub fn engine_command(&self) -> Option<Command> {
        match self {
            ClientMsg::Escalate => Some(Command::ForceEscalate),
            ClientMsg::SetPaused { paused } => Some(Command::SetPaused(*paused)),
            ClientMsg::Ack { incident } => Some(Command::Ack {
                incident: *incident,
                by: "console".into(),
            }),
            ClientMsg::SetWatches { watches } => Some(Command::SetWatches(watches.clone())),
            _ => None,
        }
    }
}

/// Who answers on the socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub protocol: u32,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub device: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

impl ServiceInfo {
    /// `serve pid N · up 3h`.
    pub fn label(&self, now: DateTime<Utc>) -> String {
        let up = (now - self.started_at).num_seconds().max(0) as u64;
        let up = match up {
            s if s < 60 => format!("{s}s"),
            s if s < 3600 => format!("{}m", s / 60),
            s if s < 86_400 => format!("{}h", s / 3600),
            s => format!("{}d", s / 86_400),
        };
        format!("serve pid {} · up {up}", self.pid)
    }
}

/// Session totals a snapshot carries (the replayed entries are only the recent ones).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    pub frames_seen: u64,
    pub superseded: u64,
    pub unchanged: u64,
    pub answers: u64,
    pub escalations: u64,
    pub disagreements: u64,
    /// Frames pushed out of the full teacher queue.
    pub teacher_dropped: u64,
    /// Forced escalations refused (merged, or over `policy.forced_per_minute`).
    pub escalations_refused: u64,
}

/// Service → console (in memory, the frame is the event's own `image`).
#[derive(Debug, Clone)]
pub enum ServerMsg {
    Hello(ServiceInfo),
    /// Forget what was shown: a snapshot follows (on attach, and on resync).
    SnapshotBegin {
        resync: bool,
    },
    SnapshotEnd {
        counters: Counters,
    },
    Event(Event),
    Upskill(UpskillEvent),
    /// An upskill run could not start (and why).
    UpskillRefused(String),
    /// The result of a command, for the status bar.
    Notice {
        text: String,
        warning: bool,
    },
    /// The answer to `eval`: the row as `eval --json` prints it, or why it failed.
    EvalDone {
        result: Result<serde_json::Value, String>,
    },
    /// The MQTT broker's state, when `[mqtt]` is on (`mqtt connected`, `mqtt down (3
    /// waiting)`).
    Broker {
        label: String,
        connected: bool,
    },
    /// The answer to `history`: a page, or why there is none.
    History {
        result: Result<crate::history::paged::Page, String>,
    },
    /// The answer to `history_detail`.
    HistoryDetail {
        result: Result<crate::history::paged::Detail, String>,
    },
    /// The answer to `history_frame`: the frame row's JPEG, or why there is none.
    HistoryFrame {
        id: i64,
        result: Result<Arc<[u8]>, String>,
    },
    /// The answer to `away`: the summary, or none (away too briefly, first visit, no store).
    Away {
        summary: Option<Box<crate::history::query::AwaySummary>>,
    },
    /// The answer to `here`: recorded.
    Here,
    /// Something this console sent was refused; the service closes the connection.
    Error(String),
}

/// A frame on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireFrame {
    width: u32,
    height: u32,
    jpeg: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Hello(ServiceInfo),
    SnapshotBegin {
        resync: bool,
    },
    SnapshotEnd {
        counters: Counters,
    },
    Event {
        event: Event,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frame: Option<WireFrame>,
    },
    Upskill {
        event: UpskillEvent,
    },
    UpskillRefused {
        message: String,
    },
    Notice {
        text: String,
        warning: bool,
    },
    EvalDone {
        #[serde(default)]
        ok: Option<serde_json::Value>,
        #[serde(default)]
        error: Option<String>,
    },
    Broker {
        label: String,
        connected: bool,
    },
    History {
        #[serde(default)]
        page: Option<crate::history::paged::Page>,
        #[serde(default)]
        error: Option<String>,
    },
    Error {
        message: String,
    },
    HistoryDetail {
        #[serde(default)]
        detail: Option<crate::history::paged::Detail>,
        #[serde(default)]
        error: Option<String>,
    },
    HistoryFrame {
        id: i64,
        /// Base64 JPEG.
        #[serde(default)]
        jpeg: Option<String>,
        #[serde(default)]
        error: Option<String>,
    },
    Away {
        #[serde(default)]
        summary: Option<Box<crate::history::query::AwaySummary>>,
    },
    Here,
}

/// Why a line could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProtocolError {
    #[error("line too long ({len} bytes, at most {max})")]
    TooLong { len: usize, max: usize },
    #[error("not a message of protocol {PROTOCOL_VERSION}: {0}")]
    Malformed(String),
    /// A field out of its range (checked as the config checks the same setting).
    #[error("{0}")]
    OutOfRange(String),
}

/// Longest client name in a hello (it is shown in the service's log).
pub const MAX_CLIENT_NAME: usize = 64;
/// Longest skill text an `eval` may send.
pub const MAX_EVAL_SKILL_CHARS: usize = 32 * 1024;
/// Most rows an upskill run has (the current skill and its candidates).
pub const MAX_UPSKILL_ROW: usize = 32;

impl ClientMsg {
    /// Every field in its range, as the config checks the same settings.
    pub fn check(&self) -> Result<(), String> {
        use crate::learn::console::{MAX_ITEMS, MAX_ITEM_CHARS};
        match self {
            ClientMsg::Hello { client, .. } => {
                if client.chars().count() > MAX_CLIENT_NAME {
                    return Err(format!(
                        "client must be at most {MAX_CLIENT_NAME} characters, got {}",
                        client.chars().count()
                    ));
                }
                if let Some(why) = crate::mqtt::config::invisible_in_name(client) {
                    return Err(format!("client {client:?}: {why}"));
                }
            }
            ClientMsg::UpskillStart {
                candidates: Some(n),
                ..
            } if !crate::config::CANDIDATES.contains(n) => {
                return Err(format!(
                    "candidates must be between {} and {} (as upskill.candidates), got {n}",
                    crate::config::CANDIDATES.start(),
                    crate::config::CANDIDATES.end()
                ))
            }
            ClientMsg::UpskillApply { row } if *row > MAX_UPSKILL_ROW => {
                return Err(format!(
                    "row must be between 0 and {MAX_UPSKILL_ROW}, got {row}"
                ))
            }
            ClientMsg::SaveLearned { expect, forbid, .. } => {
                for (name, items) in [("expect", expect), ("forbid", forbid)] {
                    if items.len() > MAX_ITEMS {
                        return Err(format!(
                            "{name} must have at most {MAX_ITEMS} entries, got {}",
                            items.len()
                        ));
                    }
                    if let Some(long) = items.iter().find(|i| i.chars().count() > MAX_ITEM_CHARS) {
                        return Err(format!(
                            "each {name} entry must be at most {MAX_ITEM_CHARS} characters, got {}",
                            long.chars().count()
                        ));
                    }
                }
            }
            ClientMsg::Eval { skill: Some(s) } if s.chars().count() > MAX_EVAL_SKILL_CHARS => {
                return Err(format!(
                    "skill must be at most {MAX_EVAL_SKILL_CHARS} characters, got {}",
                    s.chars().count()
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

/// One console line (without its newline). An unknown `type` is `Malformed`.
pub fn decode_client(line: &str) -> Result<ClientMsg, ProtocolError> {
    if line.len() > MAX_CLIENT_LINE {
        return Err(ProtocolError::TooLong {
            len: line.len(),
            max: MAX_CLIENT_LINE,
        });
    }
    let msg: ClientMsg =
        serde_json::from_str(line).map_err(|e| ProtocolError::Malformed(short(&e.to_string())))?;
    msg.check().map_err(ProtocolError::OutOfRange)?;
    Ok(msg)
}

/// A console message as one line, with its newline.
pub fn encode_client(msg: &ClientMsg) -> String {
    let mut s = serde_json::to_string(msg).expect("client messages serialize");
    s.push('\n');
    s
}

/// A service message as one line, with its newline. Token events are not sent
/// differently: they are small.
pub fn encode_server(msg: &ServerMsg) -> String {
    let wire = match msg {
        ServerMsg::Hello(info) => Wire::Hello(info.clone()),
        ServerMsg::SnapshotBegin { resync } => Wire::SnapshotBegin { resync: *resync },
        ServerMsg::SnapshotEnd { counters } => Wire::SnapshotEnd {
            counters: *counters,
        },
        ServerMsg::Event(event) => {
            let frame = match event {
                Event::FrameTaken {
                    image: Some(img), ..
                } => Some(WireFrame {
                    width: img.width,
                    height: img.height,
                    jpeg: img.base64.to_string(),
                }),
                _ => None,
            };
            Wire::Event {
                event: event.clone(),
                frame,
            }
        }
        ServerMsg::Upskill(event) => Wire::Upskill {
            event: event.clone(),
        },
        ServerMsg::UpskillRefused(message) => Wire::UpskillRefused {
            message: message.clone(),
        },
        ServerMsg::Notice { text, warning } => Wire::Notice {
            text: text.clone(),
            warning: *warning,
        },
        ServerMsg::EvalDone { result } => match result {
            Ok(v) => Wire::EvalDone {
                ok: Some(v.clone()),
                error: None,
            },
            Err(e) => Wire::EvalDone {
                ok: None,
                error: Some(e.clone()),
            },
        },
        ServerMsg::Broker { label, connected } => Wire::Broker {
            label: label.clone(),
            connected: *connected,
        },
        ServerMsg::History { result } => Wire::History {
            page: result.as_ref().ok().cloned(),
            error: result.as_ref().err().cloned(),
        },
        ServerMsg::Error(message) => Wire::Error {
            message: message.clone(),
        },
        ServerMsg::HistoryDetail { result } => Wire::HistoryDetail {
            detail: result.as_ref().ok().cloned(),
            error: result.as_ref().err().cloned(),
        },
        ServerMsg::HistoryFrame { id, result } => Wire::HistoryFrame {
            id: *id,
            jpeg: result
                .as_ref()
                .ok()
                .map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
            error: result.as_ref().err().cloned(),
        },
        ServerMsg::Away { summary } => Wire::Away {
            summary: summary.clone(),
        },
        ServerMsg::Here => Wire::Here,
    };
    let mut s = serde_json::to_string(&wire).expect("service messages serialize");
    s.push('\n');
    s
}

/// One service line (without its newline); a frame is decoded back into the event.
pub fn decode_server(line: &str) -> Result<ServerMsg, ProtocolError> {
    if line.len() > MAX_SERVER_LINE {
        return Err(ProtocolError::TooLong {
            len: line.len(),
            max: MAX_SERVER_LINE,
        });
    }
    let wire: Wire =
        serde_json::from_str(line).map_err(|e| ProtocolError::Malformed(short(&e.to_string())))?;
    Ok(match wire {
        Wire::Hello(info) => ServerMsg::Hello(info),
        Wire::SnapshotBegin { resync } => ServerMsg::SnapshotBegin { resync },
        Wire::SnapshotEnd { counters } => ServerMsg::SnapshotEnd { counters },
        Wire::Event { mut event, frame } => {
            if let (Event::FrameTaken { image, .. }, Some(f)) = (&mut event, frame) {
                let jpeg = base64::engine::general_purpose::STANDARD
                    .decode(f.jpeg.as_bytes())
                    .map_err(|e| ProtocolError::Malformed(format!("frame: {e}")))?;
                *image = Some(Arc::new(PreparedFrame {
                    width: f.width,
                    height: f.height,
                    jpeg: jpeg.into(),
                    base64: f.jpeg.into(),
                }));
            }
            ServerMsg::Event(event)
        }
        Wire::Upskill { event } => ServerMsg::Upskill(event),
        Wire::History { page, error } => ServerMsg::History {
            result: match (page, error) {
                (Some(p), None) => Ok(p),
                (_, e) => Err(e.unwrap_or_else(|| "no page and no error".into())),
            },
        },
        Wire::UpskillRefused { message } => ServerMsg::UpskillRefused(message),
        Wire::Notice { text, warning } => ServerMsg::Notice { text, warning },
        Wire::EvalDone { ok, error } => ServerMsg::EvalDone {
            result: match (ok, error) {
                (Some(v), None) => Ok(v),
                (_, Some(e)) => Err(e),
                (None, None) => Err("the service sent an empty eval result".into()),
            },
        },
        Wire::Broker { label, connected } => ServerMsg::Broker { label, connected },
        Wire::Error { message } => ServerMsg::Error(message),
        Wire::HistoryDetail { detail, error } => ServerMsg::HistoryDetail {
            result: match (detail, error) {
                (Some(d), None) => Ok(d),
                (_, e) => Err(e.unwrap_or_else(|| "no detail and no error".into())),
            },
        },
        Wire::HistoryFrame { id, jpeg, error } => ServerMsg::HistoryFrame {
            id,
            result: match (jpeg, error) {
                (Some(j), None) => base64::engine::general_purpose::STANDARD
                    .decode(j.as_bytes())
                    .map(Arc::from)
                    .map_err(|e| format!("frame: {e}")),
                (_, e) => Err(e.unwrap_or_else(|| "no frame and no error".into())),
            },
        },
        Wire::Away { summary } => ServerMsg::Away { summary },
        Wire::Here => ServerMsg::Here,
    })
}

/// The hello a console sends.
pub fn client_hello(client: &str) -> ClientMsg {
    ClientMsg::Hello {
        protocol: PROTOCOL_VERSION,
        client: client.into(),
    }
}

/// What the service says to a console of another protocol version.
pub fn version_mismatch(theirs: u32) -> String {
    format!(
        "protocol mismatch: the console speaks version {theirs}, this service (gemmaedge-tui {}) speaks {PROTOCOL_VERSION}; run the same gemmaedge-tui build for `serve` and the console",
        env!("CARGO_PKG_VERSION")
    )
}

/// serde's messages can quote the input: keep them short.
fn short(s: &str) -> String {
    crate::reading::sanitize::strip_controls(&s.chars().take(200).collect::<String>())
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
