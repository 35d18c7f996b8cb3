//! A console's requests to the history store: a page, an incident's detail, a saved frame,
//! and the "while you were away" bookkeeping. Each runs off the async threads on a
//! connection of its own, bounded in size and time (`history::paged`), a few at a time, so
//! none holds up the engine or the other consoles. Whoever runs the engine answers them:
//! the service for attached consoles, a console's own hub otherwise.

use super::protocol::{ClientMsg, ServerMsg};
use crate::config::Config;
use chrono::Utc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Page queries answered at once (the rest are told to ask again).
static HISTORY_QUERIES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Other store requests at once, all clients together; beyond them a request waits its
/// turn. Each is small and bounded in time.
static STORE_JOBS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Answer `msg` (a store request from a client of user `uid`) through `reply`, later.
pub fn spawn(
    config: &Config,
    uid: Option<u32>,
    msg: ClientMsg,
    reply: impl FnOnce(ServerMsg) + Send + 'static,
) {
    let path = config.history.resolved(&config.paths.logs);
    let logs = config.paths.logs.clone();
    tokio::spawn(async move {
        let msg_kind = Kind::of(&msg);
        let job: Box<dyn FnOnce() -> ServerMsg + Send> = match msg {
            ClientMsg::History {
                filter,
                after,
                limit,
            } => {
                let Ok(_permit) = HISTORY_QUERIES.try_acquire() else {
                    return reply(ServerMsg::History {
                        result: Err(
                            "the service is answering other history queries: ask again".into()
                        ),
                    });
                };
                let result = tokio::task::spawn_blocking(move || {
                    crate::history::paged::page(&path, &filter, after, limit)
                })
                .await
                .unwrap_or_else(|e| Err(format!("history query crashed: {e}")));
                return reply(ServerMsg::History { result });
            }
            ClientMsg::HistoryDetail { incident } => Box::new(move || ServerMsg::HistoryDetail {
                result: crate::history::paged::detail(&path, incident),
            }),
            ClientMsg::HistoryFrame { id } => Box::new(move || ServerMsg::HistoryFrame {
                id,
                result: crate::history::paged::frame_jpeg(&path, &logs, id).map(Into::into),
            }),
            ClientMsg::Away => Box::new(move || away(&path, uid)),
            ClientMsg::Here => Box::new(move || here(&path, uid)),
            _ => return,
        };
        // A flood of requests waits in a bounded line, not in ever more tasks.
        if WAITING.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            WAITING.fetch_sub(1, Ordering::SeqCst);
            return reply(busy(&msg_kind));
        }
        let permit = STORE_JOBS.acquire().await;
        WAITING.fetch_sub(1, Ordering::SeqCst);
        let Ok(_permit) = permit else {
            return;
        };
        let msg = tokio::task::spawn_blocking(job)
            .await
            .unwrap_or_else(|e| ServerMsg::Notice {
                text: format!("history request crashed: {e}"),
                warning: true,
            });
        reply(msg);
    });
}

/// Store requests waiting for a turn, all clients together; beyond, they are refused.
static WAITING: AtomicUsize = AtomicUsize::new(0);
const MAX_WAITING: usize = 64;

/// Which answer a refused request gets.
#[derive(Clone, Copy)]
enum Kind {
    Detail,
    Frame(i64),
    Other,
}

impl Kind {
    fn of(msg: &ClientMsg) -> Kind {
        match msg {
            ClientMsg::HistoryDetail { .. } => Kind::Detail,
            ClientMsg::HistoryFrame { id } => Kind::Frame(*id),
            _ => Kind::Other,
        }
    }
}

fn busy(kind: &Kind) -> ServerMsg {
    let why = format!("the service has {MAX_WAITING} history requests waiting: ask again");
    match *kind {
        Kind::Detail => ServerMsg::HistoryDetail { result: Err(why) },
        Kind::Frame(id) => ServerMsg::HistoryFrame {
            id,
            result: Err(why),
        },
        Kind::Other => ServerMsg::Notice {
            text: why,
            warning: true,
        },
    }
}

fn away(path: &std::path::Path, uid: Option<u32>) -> ServerMsg {
    let Some(uid) = uid else {
        return ServerMsg::Away { summary: None };
    };
    match crate::history::presence::arrive(path, uid, Utc::now()) {
        Ok(summary) => ServerMsg::Away {
            summary: summary.map(Box::new),
        },
        Err(e) => ServerMsg::Notice {
            text: format!("no \"while you were away\" summary: {e}"),
            warning: true,
        },
    }
}

fn here(path: &std::path::Path, uid: Option<u32>) -> ServerMsg {
    let Some(uid) = uid else {
        return ServerMsg::Here;
    };
    match crate::history::presence::here(path, uid, Utc::now()) {
        Ok(()) => ServerMsg::Here,
        Err(e) => ServerMsg::Notice {
            text: format!("cannot record that this console is here: {e}"),
            warning: true,
        },
    }
}
