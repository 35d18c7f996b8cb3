//! Headless face: the monitoring loop without the console, one readable line per event.

use crate::config::Config;
use crate::engine::{self, EngineOptions};
use crate::event::{Command, Event, Health};
use crate::reading::sanitize::for_screen;
use std::io::Write;

/// Longest piece of model text printed on one line.
const MAX_TEXT: usize = 240;

/// Run until SIGINT/SIGTERM/SIGHUP or `max_frames` answers; returns the exit code.
pub async fn run(config: Config, options: EngineOptions) -> color_eyre::Result<i32> {
    let mqtt_config = config.clone();
    let mut handle = engine::start(config, options)?;
    // `[mqtt] url` set: every event also goes to the broker. `send` never waits, so a
    // broker that is away never slows this loop.
    let mut bridge = crate::mqtt::Bridge::start(&mqtt_config, handle.commands.clone());
    let mut notices = bridge.as_mut().and_then(|b| b.take_notices());
    let mut out = std::io::stdout().lock();
    let mut shutdown_sent = false;
    let mut code = 0;
    #[cfg(unix)]
    let (mut sigterm, mut sighup) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        )
    };
    loop {
        #[cfg(unix)]
        let signalled = async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = sigterm.recv() => {},
                _ = sighup.recv() => {},
            }
        };
        #[cfg(not(unix))]
        let signalled = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        tokio::select! {
            Some(notice) = recv_notice(&mut notices) => {
                let now = chrono::Local::now().format("%H:%M:%S");
                let _ = writeln!(out, "{now} {}", first_line(&notice));
                let _ = out.flush();
            }
            ev = handle.events.recv() => {
                let Some(ev) = ev else { break };
                if let Some(b) = &bridge {
                    b.send(&ev);
                }
                let stopped = matches!(ev, Event::Stopped { .. });
                if matches!(ev, Event::StudentRefused { .. }) && !shutdown_sent {
                    // Nothing can be monitored: say why (below) and stop with an error.
                    code = 1;
                    shutdown_sent = true;
                    let _ = handle.commands.send(Command::Shutdown);
                }
                if let Some(line) = describe(&ev) {
                    // A closed stdout (pipe) must not kill the engine mid-write.
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
                if stopped {
                    break;
                }
            }
            _ = signalled, if !shutdown_sent => {
                shutdown_sent = true;
                let _ = handle.commands.send(Command::Shutdown);
            }
        }
    }
    let _ = handle.task.await;
    if let Some(b) = bridge {
        // Publishes `offline` and disconnects cleanly (no last will).
        b.stop().await;
        while let Some(Ok(notice)) = notices.as_mut().map(|n| n.try_recv()) {
            let now = chrono::Local::now().format("%H:%M:%S");
            let _ = writeln!(out, "{now} {}", first_line(&notice));
        }
        let _ = out.flush();
    }
    Ok(code)
}

/// The next bridge notice; pending forever when there is no bridge (or it has gone).
async fn recv_notice(
    notices: &mut Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
) -> Option<String> {
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

fn first_line(s: &str) -> String {
    let clean = for_screen(s, MAX_TEXT * 4);
    let joined = clean
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    for_screen(&joined, MAX_TEXT)
}

/// The line printed for an event (`None` for tokens).
pub fn describe(ev: &Event) -> Option<String> {
    let now = chrono::Local::now().format("%H:%M:%S");
    let body = match ev {
        Event::Started {
            student,
            teacher,
            source,
            skill,
            ..
        } => {
            format!("started: student {student}, teacher {teacher}, source {source}, skill {skill}")
        }
        Event::FrameTaken {
            seq,
            label,
            width,
            height,
            jpeg_bytes,
            superseded,
            ..
        } => format!(
            "#{seq} frame {} {width}x{height} {:.1} KB{}",
            for_screen(label, 80),
            *jpeg_bytes as f64 / 1024.0,
            if *superseded > 0 {
                format!(" ({superseded} newer-frame skips)")
            } else {
                String::new()
            }
        ),
        Event::StudentToken { .. } => return None,
        Event::FrameUnchanged {
            seq,
            change,
            unchanged_total,
            ..
        } => format!(
            "#{seq} unchanged ({:.0}% of the hash differs), not sent; {unchanged_total} skipped so far",
            change * 100.0
        ),
        Event::StudentAnswer {
            seq,
            answer,
            confidence,
            measured_confidence,
            latency_ms,
            reasons,
            ..
        } => {
            let mut conf = confidence.map_or("—".to_string(), |c| format!("{c:.2}"));
            if let Some(m) = measured_confidence {
                conf.push_str(&format!(" (measured {m:.2})"));
            }
            let badges: String = reasons
                .iter()
                .map(|r| format!(" [{}]", r.badge()))
                .collect();
            format!(
                "#{seq} student {conf} ({:.1} s){badges}: {}",
                *latency_ms as f64 / 1000.0,
                first_line(answer)
            )
        }
        Event::StudentFailed { seq, error } => {
            format!("#{seq} student failed: {}", first_line(error))
        }
        Event::StudentRefused { reason, hint } => format!(
            "student not started: {}",
            first_line(&crate::model::error::with_hint(reason, hint))
        ),
        Event::Escalated {
            seq,
            reasons,
            queue_len,
            ..
        } => format!(
            "#{seq} escalated: {} (teacher queue {queue_len})",
            reasons
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::TeacherDropped { seq, .. } => {
            format!("#{seq} dropped from the full teacher queue")
        }
        Event::EscalationRefused { seq, why, refused } => {
            format!("#{seq} forced escalation refused: {why} ({refused} refused so far)")
        }
        Event::TeacherStarted { seq, .. } => format!("#{seq} teacher reviewing"),
        Event::TeacherVerdict {
            seq,
            verdict,
            latency_ms,
        } => {
            let secs = *latency_ms as f64 / 1000.0;
            match (&verdict.raw, verdict.agrees) {
                (Some(raw), _) => format!(
                    "#{seq} teacher ({secs:.1} s, not JSON): {}",
                    first_line(raw)
                ),
                (None, agrees) => {
                    let mut s = format!(
                        "#{seq} teacher {} ({secs:.1} s){}: {}",
                        match (agrees, verdict.truncated) {
                            (a, true) if a != Some(false) => "PARTIAL (cut)",
                            (Some(false), true) => "DISAGREES (cut)",
                            (Some(true), _) => "AGREES",
                            (Some(false), _) => "DISAGREES",
                            (None, _) => "UNSURE",
                        },
                        if crate::record::notify::is_alert(verdict) {
                            " [SAFETY]"
                        } else {
                            ""
                        },
                        first_line(&verdict.summary)
                    );
                    if !verdict.missed.is_empty() {
                        s.push_str(&format!(
                            " | missed: {}",
                            first_line(&verdict.missed.join("; "))
                        ));
                    }
                    if !verdict.wrong.is_empty() {
                        s.push_str(&format!(
                            " | wrong: {}",
                            first_line(&verdict.wrong.join("; "))
                        ));
                    }
                    s
                }
            }
        }
        Event::TeacherFailed { seq, error } => {
            format!("#{seq} teacher failed: {}", first_line(error))
        }
        Event::Health { role, health } => match health {
            Health::Unknown => format!("{role}: unknown"),
            Health::Ok { latency_ms } => format!("{role}: ok ({latency_ms} ms)"),
            Health::Slow { latency_ms } => format!("{role}: slow ({latency_ms} ms)"),
            Health::Offline { reason, hint } => format!(
                "{role} offline: {}",
                first_line(&crate::model::error::with_hint(reason, hint))
            ),
        },
        Event::ModelLoad {
            role,
            state,
            took_ms,
        } => match (state, took_ms) {
            (crate::event::ModelLoad::Unknown, _) => return None,
            (crate::event::ModelLoad::Loaded, Some(ms)) => {
                format!("{role} model loaded (in {:.1} s)", *ms as f64 / 1000.0)
            }
            (s, _) => format!("{role} model {}", s.label()),
        },
        Event::WarmUp { role, reason } => match reason {
            // Every half keep_alive while calm: in the session log, not on the screen.
            crate::event::WarmReason::KeepAlive => return None,
            crate::event::WarmReason::Start => format!("{role}: loading the model"),
            crate::event::WarmReason::Dropped => {
                format!("{role}: the server dropped the model; loading it again")
            }
            crate::event::WarmReason::Keyword { seq, keyword } => {
                format!("#{seq} {keyword:?} in the answer: making sure the {role} is loaded")
            }
        },
        Event::Notified {
            seq,
            via,
            suppressed,
            incident,
            change,
        } => format!(
            "#{seq} {} sent via {}{}",
            match (incident, change) {
                (Some(i), Some(c)) => format!("incident #{i} {c} alert"),
                _ => "safety alert".into(),
            },
            via.join(" and "),
            if *suppressed > 0 {
                format!(" ({suppressed} held back by the rate limit before it)")
            } else {
                String::new()
            }
        ),
        Event::Incident(i) => {
            let title = crate::reading::sanitize::for_screen(&i.title, 60);
            let level = match i.level {
                2 => "urgent",
                1 => "worth a look",
                _ => "level 0",
            };
            match i.change {
                crate::event::IncidentChange::Open => {
                    format!("incident #{} opened ({level}): {title}", i.id)
                }
                crate::event::IncidentChange::Raise => {
                    format!("incident #{} rose to {level}: {title}", i.id)
                }
                crate::event::IncidentChange::Join => return None,
                crate::event::IncidentChange::Close => format!(
                    "incident #{} closed after {} s, {} frames: {title}",
                    i.id,
                    crate::history::incident::duration(i).num_seconds(),
                    i.frames
                ),
                crate::event::IncidentChange::Ack => format!(
                    "incident #{} acknowledged by {}",
                    i.id,
                    crate::reading::sanitize::for_screen(i.acked_by.as_deref().unwrap_or("?"), 60)
                ),
            }
        }
        Event::Paused { paused } => {
            if *paused {
                "capture paused".into()
            } else {
                "capture resumed".into()
            }
        }
        Event::SkillLoaded { name, chars } => format!("skill loaded: {name} ({chars} chars)"),
        Event::Watches(w) if !w.changes.is_empty() => w
            .changes
            .iter()
            .map(crate::watch::change_line)
            .collect::<Vec<_>>()
            .join("; "),
        Event::Watches(w) => format!(
            "watching {}",
            if w.watches.is_empty() {
                "nothing".to_string()
            } else {
                w.watches
                    .iter()
                    .map(|s| format!("{} ({})", s.id, s.state.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        Event::FrameUnanswered { seq, why } => format!("#{seq} not answered: {}", first_line(why)),
        Event::TeacherAlone { on, every_secs } => {
            if *on {
                crate::event::teacher_alone_label(*every_secs)
            } else {
                "the teacher no longer watches alone".into()
            }
        }
        Event::Warning { message } => format!("warning: {}", first_line(message)),
        Event::Stopped {
            frames_answered,
            failure: None,
        } => {
            format!("stopped after {frames_answered} answers")
        }
        Event::Stopped {
            frames_answered,
            failure: Some(why),
        } => {
            format!("stopped after {frames_answered} answers: {why}")
        }
    };
    Some(format!("{now} {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ModelLoad, Role, WarmReason};

    #[test]
    fn model_load_and_warm_up_lines() {
        let line = |ev: Event| describe(&ev).map(|l| l.split_once(' ').unwrap().1.to_string());
        assert_eq!(
            line(Event::ModelLoad {
                role: Role::Teacher,
                state: ModelLoad::Loaded,
                took_ms: Some(8040),
            })
            .as_deref(),
            Some("teacher model loaded (in 8.0 s)")
        );
        assert_eq!(
            line(Event::ModelLoad {
                role: Role::Student,
                state: ModelLoad::Loading,
                took_ms: None,
            })
            .as_deref(),
            Some("student model loading…")
        );
        assert_eq!(
            line(Event::WarmUp {
                role: Role::Teacher,
                reason: WarmReason::Keyword {
                    seq: 7,
                    keyword: "smoke".into()
                },
            })
            .as_deref(),
            Some("#7 \"smoke\" in the answer: making sure the teacher is loaded")
        );
        // The periodic re-warm is in the session log only.
        assert_eq!(
            line(Event::WarmUp {
                role: Role::Teacher,
                reason: WarmReason::KeepAlive,
            }),
            None
        );
    }
}
