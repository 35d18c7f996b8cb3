//! `gemmaedge-tui`: the console (default), `--headless`, and CLI subcommands.

use clap::{Parser, Subcommand};
use gemmaedge_tui::cli;
use gemmaedge_tui::config::{Config, SourceKind};
use gemmaedge_tui::engine::EngineOptions;
use gemmaedge_tui::reading::sanitize::{escape_controls, escape_line};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "gemmaedge-tui",
    version,
    about = "Terminal console for local edge vision: a student model on this device, a teacher on the LAN"
)]
struct Cli {
    /// Config file (default: ./config.toml, then $XDG_CONFIG_HOME/gemmaedge/config.toml, then built-in defaults).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Run the monitoring loop without the console, one line per event.
    #[arg(long)]
    headless: bool,
    /// Stop after this many student answers.
    #[arg(long, global = true)]
    max_frames: Option<u64>,
    /// A folder of images or one image file to use instead of the configured source.
    #[arg(long, global = true)]
    source: Option<PathBuf>,
    /// Frames offered per second (overrides source.fps).
    #[arg(long, global = true)]
    fps: Option<f64>,
    /// The service's control socket (default: [service] socket, else
    /// $XDG_RUNTIME_DIR/gemmaedge.sock, else /tmp/gemmaedge-<uid>/gemmaedge.sock).
    #[arg(long, global = true)]
    socket: Option<PathBuf>,
    /// Run the engine in this console even when a service answers on the socket.
    #[arg(long)]
    standalone: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the engine as an always-on service; consoles attach to it over a local socket.
    Serve,
    /// Check the setup: config, servers, models, camera, skills dir, eval set.
    Check,
    /// Score a skill on the eval set with the student (per-case table and totals).
    Eval {
        /// Skill file to score (default: the current skills/skill.txt).
        #[arg(long)]
        skill: Option<PathBuf>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
        /// Score another student model (e.g. a fine-tuned one) on the student's host, with the current skill.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["skill", "compare"])]
        student_model: Option<String>,
        /// Score two student models side by side, with the paired bootstrap interval of B − A.
        #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "skill")]
        compare: Option<Vec<String>>,
    },
    /// Let the teacher write candidate skills, score them, and replace the skill with the winner.
    Upskill {
        /// How many candidates the teacher writes (default: upskill.candidates).
        #[arg(long)]
        candidates: Option<usize>,
        /// Replace the skill without asking when a candidate wins.
        #[arg(long)]
        yes: bool,
    },
    /// Turn reviewed frames of a session log into eval cases (eval/learned.toml).
    Learn {
        /// A session log, e.g. logs/session-20261128.jsonl.
        #[arg(long)]
        from: PathBuf,
        /// Only frames where the teacher disagreed with the student.
        #[arg(long)]
        only_disagreements: bool,
    },
    /// The fleet console: every device on the [mqtt] broker, alerts first (any machine).
    Fleet,
    /// How well the student's confidence predicts teacher agreement, from a session log.
    Calibrate {
        #[arg(long)]
        from: PathBuf,
    },
    /// Fine-tuning the student: whether it is worth it yet, and its training set.
    Finetune {
        #[command(subcommand)]
        action: FinetuneAction,
    },
    /// What happened: incidents, escalations, verdicts, failures, skill changes (the store).
    #[command(args_conflicts_with_subcommands = true)]
    History {
        #[command(subcommand)]
        action: Option<HistoryAction>,
        /// From: 12h, 7d (before now), 2026-12-01, or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Until (same forms).
        #[arg(long)]
        until: Option<String>,
        /// Incidents only.
        #[arg(long)]
        incidents: bool,
        /// Text in answers, verdicts, titles, reasons and notes.
        #[arg(long)]
        search: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Every answer, not only escalations, verdicts, failures, incidents and notes.
        #[arg(long)]
        all: bool,
        /// At most this many lines, newest first.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
enum FinetuneAction {
    /// Is fine-tuning the student worth it yet: labelled frames, upskill gains, the teacher's corrections.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write a training set from the teacher's verdicts (images, skill, user turn, corrected target).
    Export {
        /// The directory to write (new or empty; --force replaces an earlier export).
        dir: PathBuf,
        /// From: 12h, 7d (before now), 2026-12-01, or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// hf: an image folder with metadata.jsonl (TRL, Unsloth); sharegpt: LLaMA-Factory.
        #[arg(long, value_enum, default_value_t = cli::finetune_cmd::Format::Hf)]
        format: cli::finetune_cmd::Format,
        /// Which frames: the ones the teacher corrected, the safety-relevant ones, or all.
        #[arg(long, value_enum, default_value_t = cli::finetune_cmd::Only::All)]
        only: cli::finetune_cmd::Only,
        /// Share of frames kept for the test split (0 to 0.5).
        #[arg(long, default_value_t = 0.1)]
        holdout: f64,
        /// Replace DIR when it holds an earlier export.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum HistoryAction {
    /// Import session logs (logs/session-*.jsonl) into the store; importing again adds nothing.
    Import {
        /// The folder holding the session logs.
        logdir: PathBuf,
    },
}

/// Every face reports errors and panics the same way: color-eyre's hooks, installed once
/// here before anything else runs by `hooks`, the one place that owns them (the console
/// only registers its terminal restore with it). Colours only when stderr is a terminal:
/// a headless log stays plain text.
fn install_error_hooks() {
    use std::io::IsTerminal;
    gemmaedge_tui::hooks::install(std::io::stderr().is_terminal());
}

fn main() {
    install_error_hooks();
    let cli = Cli::parse();
    let (mut config, origin) = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            // Config errors echo keys, values and paths from the file: escaped.
            eprintln!("gemmaedge-tui: {}", escape_controls(&e.to_string()));
            std::process::exit(2);
        }
    };
    if let Some(src) = &cli.source {
        config.source.kind = if src.is_dir() {
            SourceKind::Folder
        } else {
            SourceKind::File
        };
        config.source.path = src.to_string_lossy().into_owned();
    }
    if let Some(fps) = cli.fps {
        config.source.fps = fps;
    }
    if let Err(problems) = config.validate() {
        eprintln!("gemmaedge-tui: invalid options:");
        for p in problems {
            eprintln!("  - {}", escape_line(&p.to_string()));
        }
        std::process::exit(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gemmaedge-tui: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let options = EngineOptions {
        max_frames: cli.max_frames,
    };
    let code = runtime.block_on(async move {
        let socket = gemmaedge_tui::service::socket::socket_path(cli.socket.as_deref(), &config.service);
        match cli.command {
            Some(Cmd::Serve) => {
                gemmaedge_tui::service::server::serve(config, cli.socket.as_deref(), options).await
            }
            Some(Cmd::Check) => Ok(cli::check::run(&config, &origin, &socket).await),
            Some(Cmd::Eval {
                student_model: Some(m),
                json,
                ..
            }) => cli::eval_models::run(&config, &[m], json).await,
            Some(Cmd::Eval {
                compare: Some(ab),
                json,
                ..
            }) => cli::eval_models::run(&config, &ab, json).await,
            Some(Cmd::Eval { skill, json, .. }) => {
                cli::eval_cmd::run(&config, skill.as_deref(), json, &socket).await
            }
            Some(Cmd::Learn {
                from,
                only_disagreements,
            }) => Ok(cli::learn_cmd::learn(&config, &from, only_disagreements)),
            Some(Cmd::Fleet) => gemmaedge_tui::fleet::run(&config).await,
            Some(Cmd::Calibrate { from }) => Ok(cli::learn_cmd::calibrate(&config, &from)),
            Some(Cmd::History {
                action: Some(HistoryAction::Import { logdir }),
                ..
            }) => Ok(cli::history_cmd::import(&config, &logdir)),
            Some(Cmd::History {
                action: None,
                since,
                until,
                incidents,
                search,
                json,
                all,
                limit,
            }) => Ok(cli::history_cmd::run(
                &config,
                &cli::history_cmd::HistoryArgs {
                    since,
                    until,
                    incidents,
                    search,
                    json,
                    all,
                    limit,
                },
            )),
            Some(Cmd::Finetune {
                action: FinetuneAction::Status { json },
            }) => Ok(cli::finetune_cmd::status(&config, json)),
            Some(Cmd::Finetune {
                action:
                    FinetuneAction::Export {
                        dir,
                        since,
                        format,
                        only,
                        holdout,
                        force,
                    },
            }) => Ok(cli::finetune_cmd::export(
                &config,
                &cli::finetune_cmd::ExportArgs {
                    dir,
                    since,
                    format,
                    only,
                    holdout,
                    force,
                },
            )),
            Some(Cmd::Upskill { candidates, yes }) => {
                let range = gemmaedge_tui::config::CANDIDATES;
                if let Some(n) = candidates.filter(|n| !range.contains(n)) {
                    eprintln!(
                        "gemmaedge-tui upskill: --candidates must be between {} and {} (as upskill.candidates), got {n}",
                        range.start(),
                        range.end()
                    );
                    return Ok(cli::EXIT_BAD_INPUT);
                }
                cli::upskill_cmd::run(&config, candidates, yes, &socket).await
            }
            None if cli.headless => gemmaedge_tui::cli::headless::run(config, options).await,
            None => {
                use std::io::IsTerminal;
                if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
                    eprintln!("gemmaedge-tui: not a terminal; running headless (use --headless to say so)");
                    return gemmaedge_tui::cli::headless::run(config, options).await;
                }
                let link = gemmaedge_tui::service::attach::open(
                    &config,
                    &socket,
                    cli.standalone,
                    "console",
                    options,
                )
                .await?;
                gemmaedge_tui::tui::run(&config, link).await?;
                Ok(0)
            }
        }
    });
    match code {
        Ok(c) => std::process::exit(c),
        Err(e) => {
            eprintln!("gemmaedge-tui: {}", escape_controls(&format!("{e:#}")));
            std::process::exit(1);
        }
    }
}
