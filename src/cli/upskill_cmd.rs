//! `gemmaedge-tui upskill [--candidates N] [--yes]`: the upskill pipeline from a shell,
//! with a progress bar on stderr and the result table on stdout.

use super::eval_cmd::fmt_score;
use super::table;
use super::EXIT_BAD_INPUT;
use crate::config::Config;
use crate::roles::skill::ensure_writable;
use crate::service::attach::attach_if_running;
use crate::service::protocol::{ClientMsg, ServerMsg};
use crate::upskill::pipeline::{self, UpskillContext, UpskillEvent, UpskillOutcome};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// The run goes through the service when one runs (its scheduler puts live frames
/// first); otherwise it runs here, straight to both models.
pub async fn run(
    config: &Config,
    candidates: Option<usize>,
    yes: bool,
    socket: &Path,
) -> color_eyre::Result<i32> {
    match attach_if_running(socket, "upskill", config.service.group.as_deref()).await {
        Ok(Some(remote)) => {
            eprintln!(
                "upskill: in the service on {} (monitoring goes on; live frames go first)",
                crate::reading::sanitize::escape_line(&socket.display().to_string())
            );
            return through_service(config, remote, candidates, yes).await;
        }
        Ok(None) => eprintln!(
            "upskill: no service running; calling the models directly (a monitor using the student elsewhere slows this down)"
        ),
        Err(e) => {
            eprintln!(
                "gemmaedge-tui upskill: {}",
                crate::reading::sanitize::escape_controls(&e.to_string())
            );
            return Ok(1);
        }
    }
    let eval = match crate::eval::cases::load_for(config) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!(
                "gemmaedge-tui upskill: {}",
                crate::reading::sanitize::escape_controls(&e.to_string())
            );
            return Ok(EXIT_BAD_INPUT);
        }
    };
    // Refuse to start rather than lose the results at the end.
    if let Err(e) = ensure_writable(&config.paths.skills) {
        eprintln!(
            "gemmaedge-tui upskill: skills dir {} is not writable ({e}); not starting",
            config.paths.skills.display()
        );
        return Ok(EXIT_BAD_INPUT);
    }
    let ctx = UpskillContext::from_config(
        config,
        eval,
        candidates.unwrap_or(config.upskill.candidates),
        false,
    )?;
    for c in [&ctx.student, &ctx.teacher] {
        if let Err(e) = c.list_models().await {
            eprintln!(
                "gemmaedge-tui upskill: {} offline: {e} — {}",
                c.role(),
                e.hint(c.role(), c.model())
            );
            return Ok(1);
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let task = tokio::spawn(pipeline::run(ctx.clone(), tx, cancel_rx));
    let mut shown = Shown::new();
    let mut cancelled = false;
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                shown.show(&ev);
            }
            _ = tokio::signal::ctrl_c(), if !cancelled => {
                cancelled = true;
                let _ = cancel_tx.send(true);
            }
        }
    }
    eprintln!();
    let Some(outcome) = task.await? else {
        return Ok(1);
    };
    let Some(w) = decide_to_apply(config, &outcome, yes) else {
        return Ok(0);
    };
    match pipeline::apply(&ctx, &outcome, w, "upskill winner (cli)") {
        Ok(h) => {
            println!(
                "saved {} (history: {})",
                config.skill_path().display(),
                h.display()
            );
            Ok(0)
        }
        Err(e) => {
            eprintln!("could not save the skill: {e}; the old skill is intact");
            Ok(1)
        }
    }
}

/// Print the result; the winner's row when it is to be applied (asked unless `yes`).
fn decide_to_apply(config: &Config, outcome: &UpskillOutcome, yes: bool) -> Option<usize> {
    print!("{}", render_outcome(outcome));
    if let Some(w) = outcome.rows.first().and_then(|r| r.format.warning()) {
        println!("\nwarning: the current skill: {w}");
    }
    println!("\n{}", outcome.reason);
    let Some(w) = outcome.winner else {
        println!("the current skill stays.");
        return None;
    };
    let ok = yes
        || ask(&format!(
            "replace {} with candidate {w}? [y/N] ",
            config.skill_path().display()
        ));
    if !ok {
        println!("not applied; the current skill stays.");
        return None;
    }
    Some(w)
}

/// The run in the service: its student calls take turns with the live frames.
async fn through_service(
    config: &Config,
    mut remote: crate::service::client::Remote,
    candidates: Option<usize>,
    yes: bool,
) -> color_eyre::Result<i32> {
    remote.send(ClientMsg::UpskillStart {
        candidates,
        auto_apply: false,
    });
    let mut shown = Shown::new();
    let mut in_snapshot = false;
    let mut ours = false;
    let mut cancelled = false;
    let outcome = loop {
        tokio::select! {
            m = remote.recv() => {
                let Some(m) = m else {
                    eprintln!("\nupskill: the service closed the connection");
                    return Ok(1);
                };
                match m {
                    // What happened before we asked is not this run.
                    ServerMsg::SnapshotBegin { .. } => in_snapshot = true,
                    ServerMsg::SnapshotEnd { .. } => in_snapshot = false,
                    ServerMsg::UpskillRefused(why) => {
                        eprintln!("gemmaedge-tui upskill: {}", crate::reading::sanitize::escape_controls(&why));
                        return Ok(1);
                    }
                    ServerMsg::Error(e) => {
                        eprintln!("gemmaedge-tui upskill: the service refused: {}", crate::reading::sanitize::escape_controls(&e));
                        return Ok(1);
                    }
                    ServerMsg::Upskill(ev) if !in_snapshot => {
                        ours |= matches!(ev, UpskillEvent::Started { .. });
                        if !ours {
                            continue;
                        }
                        shown.show(&ev);
                        match ev {
                            UpskillEvent::Finished(o) => break o,
                            UpskillEvent::Failed(_) | UpskillEvent::Cancelled => return Ok(1),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            _ = tokio::signal::ctrl_c(), if !cancelled => {
                cancelled = true;
                remote.send(ClientMsg::UpskillCancel);
            }
        }
    };
    eprintln!();
    let Some(w) = decide_to_apply(config, &outcome, yes) else {
        return Ok(0);
    };
    remote.send(ClientMsg::UpskillApply { row: w });
    while let Some(m) = remote.recv().await {
        if let ServerMsg::Upskill(UpskillEvent::Applied { result, .. }) = m {
            return Ok(match result {
                Ok(h) => {
                    println!(
                        "saved {} (history: {})",
                        config.skill_path().display(),
                        crate::reading::sanitize::escape_line(&h)
                    );
                    0
                }
                Err(e) => {
                    eprintln!("could not save the skill: {e}; the old skill is intact");
                    1
                }
            });
        }
    }
    eprintln!("upskill: the service closed the connection before saving");
    Ok(1)
}

/// Progress on stderr: a bar redrawn with `\r` on a terminal; a pipe or a file gets one
/// line a phase.
struct Shown {
    bar: bool,
    phase: String,
    started: Instant,
}

impl Shown {
    fn new() -> Self {
        Shown {
            bar: std::io::stderr().is_terminal(),
            phase: String::new(),
            started: Instant::now(),
        }
    }

    fn show(&mut self, ev: &UpskillEvent) {
        let bar = self.bar;
        match ev {
            UpskillEvent::Phase(p) => {
                self.phase = p.clone();
                if bar {
                    progress(0, 0, &self.phase, self.started);
                } else {
                    eprintln!(
                        "upskill: {} ({}s)",
                        crate::reading::sanitize::for_screen(&self.phase, 200),
                        self.started.elapsed().as_secs()
                    );
                }
            }
            UpskillEvent::CaseScored {
                done_calls,
                total_calls,
                ..
            } if bar => progress(*done_calls, *total_calls, &self.phase, self.started),
            UpskillEvent::RowDone { row, score } if !bar => eprintln!(
                "upskill: row {row} scored: train {}, holdout {}, confidence line {}",
                fmt_score(score.train),
                fmt_score(score.holdout),
                score.format.short()
            ),
            UpskillEvent::Warning(w) => {
                if bar {
                    eprintln!();
                }
                eprintln!(
                    "upskill: warning: {}",
                    crate::reading::sanitize::for_screen(w, 300)
                );
            }
            UpskillEvent::Report(p) => {
                if bar {
                    eprintln!();
                }
                eprintln!("upskill: run report {}", p.display());
            }
            UpskillEvent::ReportFailed(e) => {
                if bar {
                    eprintln!();
                }
                eprintln!("upskill: {}", crate::reading::sanitize::for_screen(e, 300));
            }
            UpskillEvent::Dropped(d) => {
                if bar {
                    eprintln!();
                }
                for (p, why) in d {
                    eprintln!(
                        "  dropped a candidate ({why}): {}",
                        crate::reading::sanitize::for_screen(p, 60)
                    );
                }
            }
            UpskillEvent::Failed(m) => {
                eprintln!(
                    "\nupskill failed: {}",
                    crate::reading::sanitize::escape_controls(m)
                );
            }
            UpskillEvent::Cancelled => eprintln!("\nupskill cancelled; the skill is unchanged"),
            _ => {}
        }
    }
}

fn ask(q: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        eprintln!("{q}(no terminal to ask on: use --yes)");
        return false;
    }
    eprint!("{q}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn progress(done: usize, total: usize, phase: &str, started: Instant) {
    let elapsed = started.elapsed().as_secs();
    let width = 24;
    let filled = (done * width).checked_div(total).unwrap_or(0);
    let eta = if done > 0 && total > done {
        let per = started.elapsed().as_secs_f64() / done as f64;
        format!(", ~{}s left", (per * (total - done) as f64).round() as u64)
    } else {
        String::new()
    };
    eprint!(
        "\r[{}{}] {done}/{total} {phase:<40} {elapsed}s{eta}   ",
        "#".repeat(filled),
        "-".repeat(width - filled)
    );
    let _ = std::io::stderr().flush();
}

/// The result table: one row per skill, baseline first.
pub fn render_outcome(o: &UpskillOutcome) -> String {
    let rows: Vec<Vec<String>> = o
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                format!(
                    "{}{}",
                    if o.winner == Some(i) { "* " } else { "  " },
                    r.label
                ),
                fmt_score(r.train),
                fmt_score(r.holdout),
                r.format.short(),
                r.interval.map_or_else(
                    || "—".to_string(),
                    |iv| format!("{:+.3} [{:+.3}, {:+.3}]", iv.mean, iv.lo, iv.hi),
                ),
                r.prompt.clone(),
            ]
        })
        .collect();
    table::render(
        &[
            "skill",
            "train",
            "holdout",
            "conf line",
            "gain vs current (90% CI)",
            "prompt",
        ],
        &rows,
        60,
    )
}
