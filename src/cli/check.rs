//! `gemmaedge-tui check`: what the config needs, each ok/FAIL with the fix.

use super::table;
use crate::config::{Config, ConfigOrigin, SourceKind};
use crate::engine::model_listed;
use crate::event::Role;
use crate::frame::source::{open_source, SourceError};
use crate::model::ModelClient;
use crate::roles::skill::ensure_writable;
use std::path::Path;

/// One line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub what: String,
    pub ok: bool,
    /// Passed, but with something the user should know (printed as `warn`).
    pub warn: bool,
    pub detail: String,
}

fn row(what: impl Into<String>, ok: bool, detail: impl Into<String>) -> CheckRow {
    CheckRow {
        what: what.into(),
        ok,
        warn: false,
        detail: detail.into(),
    }
}

fn warn_row(what: impl Into<String>, detail: impl Into<String>) -> CheckRow {
    CheckRow {
        warn: true,
        ..row(what, true, detail)
    }
}

/// Can the model take images? Ok, a FAIL with the fix, or a warning when the server does
/// not say.
async fn vision_row(client: &ModelClient, role: Role, text_only: bool) -> CheckRow {
    let what = format!("{role} images");
    if text_only {
        return warn_row(
            what,
            format!("{role}.text_only = true: frames are not sent, a note stands in for them"),
        );
    }
    match client.vision().await {
        Ok(Some(true)) => row(what, true, format!("{} accepts images", client.model())),
        Ok(Some(false)) => {
            let e = crate::model::ModelError::text_only_model(client.model());
            row(
                what,
                false,
                crate::model::error::with_hint(&e.to_string(), &e.hint(role, client.model())),
            )
        }
        Ok(None) => warn_row(
            what,
            format!(
                "cannot verify that {} accepts images (the server does not say)",
                client.model()
            ),
        ),
        Err(e) => warn_row(
            what,
            format!("cannot verify that the model accepts images: {e}"),
        ),
    }
}

/// Is the model in memory (Ollama `/api/ps`)? Never a FAIL: a model that is not loaded
/// still answers, after a load. None on OpenAI-compatible hosts (they do not say).
async fn load_row(client: &ModelClient, role: Role) -> Option<CheckRow> {
    let cfg = client.config();
    if cfg.kind == crate::config::HostKind::Openai {
        return None;
    }
    let what = format!("{role} model memory");
    let ka = format!("keep_alive {}", cfg.keep_alive);
    let span = cfg.keep_alive.span().ok();
    if span == Some(crate::config::KeepAliveSpan::For(std::time::Duration::ZERO)) {
        return Some(warn_row(
            what,
            format!(
                "{role}.keep_alive = 0: unloaded after every call, so every call waits for a load"
            ),
        ));
    }
    let plan = if cfg.warm_up {
        "monitoring loads it at start and keeps it loaded"
    } else {
        "warm_up = false: a call after a calm spell longer than keep_alive waits for a load"
    };
    Some(match client.loaded().await {
        Ok(Some(true)) => row(
            what,
            true,
            format!("{} loaded ({ka}; {plan})", client.model()),
        ),
        Ok(Some(false)) => warn_row(
            what,
            format!(
                "{} not loaded: the next call waits for a load ({ka}; {plan})",
                client.model()
            ),
        ),
        Ok(None) => return None,
        Err(e) => warn_row(what, format!("cannot tell whether it is loaded: {e}")),
    })
}

/// What the service refused or dropped so far (from its snapshot's totals), e.g.
/// `; 3 frames dropped from the teacher queue, 40 forced escalations refused`.
async fn service_totals(remote: &mut crate::service::client::Remote) -> String {
    use crate::service::protocol::ServerMsg;
    let end = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Some(m) = remote.recv().await {
            if let ServerMsg::SnapshotEnd { counters } = m {
                return Some(counters);
            }
        }
        None
    })
    .await;
    let Ok(Some(c)) = end else {
        return String::new();
    };
    let mut parts = Vec::new();
    if c.teacher_dropped > 0 {
        parts.push(format!(
            "{} frames dropped from the teacher queue",
            c.teacher_dropped
        ));
    }
    if c.escalations_refused > 0 {
        parts.push(format!(
            "{} forced escalations refused",
            c.escalations_refused
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join(", "))
    }
}

/// Run every check (never fails itself: each problem is a row).
pub async fn checks(config: &Config, origin: &ConfigOrigin, socket: &Path) -> Vec<CheckRow> {
    let mut rows = vec![row("config", true, format!("parsed ({origin})"))];
    let service = match crate::service::attach::attach_if_running(
        socket,
        "check",
        config.service.group.as_deref(),
    )
    .await
    {
        Ok(Some(mut remote)) => {
            let info = remote.info.clone();
            let up = info.label(chrono::Utc::now());
            rows.push(row(
                "service",
                true,
                format!(
                    "{} on {} (device {}); consoles attach to it{}",
                    up,
                    socket.display(),
                    crate::reading::sanitize::strip_controls(&info.device),
                    service_totals(&mut remote).await
                ),
            ));
            Some(info)
        }
        Ok(None) => {
            rows.push(warn_row(
                "service",
                format!(
                    "none on {}: a console runs the engine itself (see `gemmaedge-tui serve`)",
                    socket.display()
                ),
            ));
            None
        }
        Err(e) => {
            rows.push(row("service", false, e.to_string()));
            None
        }
    };
    let mut usable = Vec::new();
    for (role, host) in [
        (Role::Student, &config.student),
        (Role::Teacher, &config.teacher),
    ] {
        let what = format!("{role} {} @ {}", host.model, host.host);
        let before = rows.len();
        match ModelClient::new(host, role) {
            Err(e) => rows.push(row(what, false, e.to_string())),
            Ok(client) => match client.list_models().await {
                Ok(models) if model_listed(&models, client.model()) => {
                    let version = client
                        .version()
                        .await
                        .map(|v| match host.kind {
                            crate::config::HostKind::Ollama => format!("Ollama {v}"),
                            crate::config::HostKind::Openai => v,
                        })
                        .unwrap_or_else(|e| format!("version unknown ({e})"));
                    rows.push(row(
                        what,
                        true,
                        format!("reachable, model present, {version}"),
                    ));
                    rows.push(vision_row(&client, role, host.text_only).await);
                    rows.extend(load_row(&client, role).await);
                }
                Ok(_) => rows.push(row(
                    what,
                    false,
                    format!(
                        "reachable, but model missing — run: ollama pull {}",
                        host.model
                    ),
                )),
                Err(e) => rows.push(row(
                    what,
                    false,
                    crate::model::error::with_hint(&e.to_string(), &e.hint(role, &host.model)),
                )),
            },
        }
        usable.push(rows[before..].iter().all(|r| r.ok));
    }
    rows.extend(monitoring_row(usable[0], usable[1], &config.policy));
    rows.extend(mqtt_row(config).await);
    match (&service, config.source.kind) {
        // The service holds the camera: opening it here would only find it busy.
        (Some(info), SourceKind::Camera) => rows.push(row(
            format!("camera {}", config.source.camera_index),
            true,
            format!("in use by the service (pid {})", info.pid),
        )),
        _ => rows.push(source_row(config)),
    }
    rows.push(match ensure_writable(&config.paths.skills) {
        Ok(()) => row(
            "skills dir",
            true,
            format!("{} writable", config.paths.skills.display()),
        ),
        Err(e) => row(
            "skills dir",
            false,
            format!(
                "{} not writable: {e} — fix permissions or set paths.skills",
                config.paths.skills.display()
            ),
        ),
    });
    rows.push(match crate::eval::cases::load_for(config) {
        Ok(set) => {
            let train = set
                .cases
                .iter()
                .filter(|c| c.split == crate::eval::cases::Split::Train)
                .count();
            let holdout = set.cases.len() - train;
            row(
                "eval set",
                true,
                format!(
                    "{} cases ({train} train, {holdout} holdout) in {}",
                    set.cases.len(),
                    config.paths.eval.display()
                ),
            )
        }
        Err(e) => row("eval set", false, e.to_string()),
    });
    rows.push(history_row(config));
    rows.push(row(
        "fine-tune",
        true,
        super::finetune_cmd::check_detail(config),
    ));
    rows
}

/// The history store: path, size, rows, oldest entry; or why it is unusable.
fn history_row(config: &Config) -> CheckRow {
    let path = config.history.resolved(&config.paths.logs);
    match crate::history::status::status(&path) {
        Ok(Some(s)) => row("history", true, s.describe(chrono::Utc::now())),
        Ok(None) => row(
            "history",
            true,
            format!(
                "no store yet at {}: the engine starts one when it runs",
                path.display()
            ),
        ),
        Err(e) => row(
            "history",
            false,
            format!(
                "{e} — monitoring goes on without history; move the file aside (the engine \
                 starts a fresh store) or set [history] path"
            ),
        ),
    }
}

/// What monitoring does with the student down (no row when it is up): the teacher watches
/// alone, and at what rate, or nobody reviews the frames.
fn monitoring_row(
    student_ok: bool,
    teacher_ok: bool,
    policy: &crate::config::PolicyConfig,
) -> Option<CheckRow> {
    if student_ok {
        return None;
    }
    let detail = if !teacher_ok {
        "the student and the teacher are both down: frames are shown, nobody reviews them"
            .to_string()
    } else if policy.fallback_every_secs == 0 {
        "the student is down: frames are shown; the teacher-only watch is off \
         (policy.fallback_every_secs = 0), only `e` sends a frame to the teacher"
            .to_string()
    } else {
        format!(
            "the student is down: after {} s (policy.student_down_secs) the {}",
            policy.student_down_secs,
            crate::event::teacher_alone_label(policy.fallback_every_secs)
        )
    };
    Some(warn_row("monitoring", detail))
}

/// The broker of `[mqtt]` (no row when it is off): connected, or down / unreachable /
/// refusing the credentials, with the fix. The password is never shown.
async fn mqtt_row(config: &Config) -> Option<CheckRow> {
    if !config.mqtt.enabled() {
        return None;
    }
    Some(match crate::mqtt::probe::probe(config).await {
        Ok(detail) => row("mqtt broker", true, detail),
        Err((state, detail)) => row(
            format!("mqtt broker ({})", state.label()),
            false,
            format!("{detail} (monitoring works without it)"),
        ),
    })
}

fn source_row(config: &Config) -> CheckRow {
    let what = match config.source.kind {
        SourceKind::Camera => format!("camera {}", config.source.camera_index),
        SourceKind::Folder => format!("folder {}", config.source.path),
        SourceKind::File => format!("file {}", config.source.path),
    };
    match open_source(&config.source, config.frame.max_side) {
        Err(e) => row(what, false, e.to_string()),
        Ok((mut src, notices)) => {
            if config.source.kind == SourceKind::Camera && !notices.is_empty() {
                let why = notices
                    .iter()
                    .map(|n| match n {
                        crate::frame::source::CaptureNotice::Warning(w) => w.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                return row(
                    what,
                    false,
                    format!("{why} — plug in a USB camera or set source.kind = \"folder\""),
                );
            }
            // One capture proves the device or the folder really gives frames.
            let mut last = String::new();
            for _ in 0..16 {
                match src.next() {
                    Ok(c) => {
                        return row(
                            what,
                            true,
                            format!("{} (first: {})", src.describe(), c.label),
                        )
                    }
                    Err(SourceError::Skipped(w)) => last = w,
                    Err(e) => return row(what, false, e.to_string()),
                }
            }
            row(what, false, format!("no readable image: {last}"))
        }
    }
}

/// Print the report; exit code 0 when everything passed, 1 otherwise.
pub async fn run(config: &Config, origin: &ConfigOrigin, socket: &Path) -> i32 {
    let rows = checks(config, origin, socket).await;
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                match (r.ok, r.warn) {
                    (false, _) => "FAIL",
                    (true, true) => "warn",
                    (true, false) => "ok",
                }
                .to_string(),
                r.what.clone(),
                r.detail.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table::render(&["", "check", "detail"], &table_rows, 240)
    );
    let failed = rows.iter().filter(|r| !r.ok).count();
    if failed == 0 {
        println!("\nall checks passed");
        0
    } else {
        println!("\n{failed} check(s) failed");
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monitoring_row_says_who_watches_with_the_student_down() {
        let policy = crate::config::PolicyConfig::default();
        assert!(monitoring_row(true, false, &policy).is_none());
        let r = monitoring_row(false, true, &policy).unwrap();
        assert!(r.ok && r.warn);
        assert_eq!(
            r.detail,
            "the student is down: after 30 s (policy.student_down_secs) the teacher watches \
             alone, 1 frame / 20 s (student down)"
        );
        let off = crate::config::PolicyConfig {
            fallback_every_secs: 0,
            ..policy.clone()
        };
        assert!(monitoring_row(false, true, &off)
            .unwrap()
            .detail
            .contains("teacher-only watch is off"));
        assert!(monitoring_row(false, false, &policy)
            .unwrap()
            .detail
            .contains("both down"));
    }
}
