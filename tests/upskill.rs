//! Upskill end to end against the Ollama test server with scripted student and teacher.

mod support;

use gemmaedge_tui::config::Config;
use gemmaedge_tui::eval::cases::load_eval_set;
use gemmaedge_tui::event::Role;
use gemmaedge_tui::model::ModelClient;
use gemmaedge_tui::roles::output_contract::OUTPUT_CONTRACT;
use gemmaedge_tui::upskill::pipeline::{self, UpskillContext, UpskillEvent, UpskillOutcome};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::ollama_server::{ChatRequest, OllamaTestServer, Reply};
use tokio::sync::{mpsc, watch};

const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";
const BASE: &str = "BASE skill: describe the frame.";

const CASES: &str = r#"
[[case]]
id = "lighter"
text = "A person is holding a lighter with a visible flame."
expect = ["person", ["flame", "fire"]]
safety = true

[[case]]
id = "desk"
text = "A laptop and coffee mug are on a desk."
expect = ["laptop", ["mug", "cup"]]
forbid = ["fire"]
safety = false

[[case]]
id = "smoke"
text = "There is smoke visible near the kitchen area."
expect = ["smoke", "kitchen"]
safety = true

[[case]]
id = "dog"
text = "A dog sleeps on a rug."
expect = ["dog", "rug"]
safety = false

[[case]]
id = "ladder"
text = "A man stands on the top step of a wobbly ladder."
expect = ["man", "ladder"]
safety = true
split = "holdout"

[[case]]
id = "office"
text = "An empty office at night."
expect = ["office"]
safety = false
split = "holdout"
"#;

/// The answer a perfect student gives for each scene, and a poor one.
fn good_answer(scene: &str) -> &'static str {
    if scene.contains("lighter") {
        "A person holds a lighter with a flame. This is a fire hazard.\nCONFIDENCE: 0.8"
    } else if scene.contains("laptop") {
        "A laptop and a mug on a desk. No safety concerns.\nCONFIDENCE: 0.9"
    } else if scene.contains("smoke") {
        "Smoke near the kitchen: possible fire hazard.\nCONFIDENCE: 0.8"
    } else if scene.contains("dog") {
        "A dog sleeping on a rug. No safety concerns.\nCONFIDENCE: 0.9"
    } else if scene.contains("ladder") {
        "A man on a wobbly ladder: danger of a fall.\nCONFIDENCE: 0.7"
    } else {
        "An empty office. No safety concerns.\nCONFIDENCE: 0.9"
    }
}

fn poor_answer(_scene: &str) -> &'static str {
    "Something is there."
}

/// The student answers well only under skills containing `GOOD`; `OVERFIT` answers
/// well on train scenes and poorly on holdout ones.
fn student_handler(req: &ChatRequest) -> Reply {
    let skill = req.messages[0].content.clone();
    let user = req.messages.last().unwrap().content.clone();
    let holdout = user.contains("ladder") || user.contains("office");
    let answer = if skill.contains("GOOD") || (skill.contains("OVERFIT") && !holdout) {
        good_answer(&user)
    } else {
        poor_answer(&user)
    };
    Reply::text(answer)
}

struct Setup {
    _dir: tempfile::TempDir,
    ctx: UpskillContext,
    student: OllamaTestServer,
    _teacher: OllamaTestServer,
}

async fn setup(teacher_reply: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(student_handler);
    teacher.push_reply(Reply::text(teacher_reply));
    let mut c = Config::default();
    c.student.host = student.url();
    c.student.model = STUDENT.into();
    c.student.timeout_secs = 10;
    c.teacher.host = teacher.url();
    c.teacher.model = TEACHER.into();
    c.teacher.timeout_secs = 10;
    c.paths.eval = dir.path().join("eval");
    c.paths.skills = dir.path().join("skills");
    c.paths.logs = dir.path().join("logs");
    c.upskill.bootstrap_samples = 500;
    std::fs::create_dir_all(&c.paths.eval).unwrap();
    std::fs::create_dir_all(&c.paths.skills).unwrap();
    std::fs::write(c.paths.eval.join("cases.toml"), CASES).unwrap();
    std::fs::write(c.skill_path(), format!("{BASE}\n")).unwrap();
    let eval = Arc::new(load_eval_set(&c.paths.eval).unwrap());
    let ctx = UpskillContext {
        student: ModelClient::new(&c.student, Role::Student).unwrap(),
        teacher: ModelClient::new(&c.teacher, Role::Teacher).unwrap(),
        eval,
        current_skill: BASE.into(),
        candidates: 3,
        auto_apply: true,
        config: c,
    };
    Setup {
        _dir: dir,
        ctx,
        student,
        _teacher: teacher,
    }
}

async fn run(ctx: UpskillContext) -> (Option<UpskillOutcome>, Vec<UpskillEvent>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (_cancel_tx, cancel_rx) = watch::channel(false);
    let outcome = pipeline::run(ctx, tx, cancel_rx).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (outcome, events)
}

fn skill_on_disk(ctx: &UpskillContext) -> String {
    std::fs::read_to_string(ctx.config.skill_path())
        .unwrap()
        .trim()
        .to_string()
}

fn history(ctx: &UpskillContext) -> Vec<std::path::PathBuf> {
    let dir = ctx.config.paths.skills.join("history");
    if !dir.exists() {
        return vec![];
    }
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_candidate_that_hits_the_expected_words_wins_and_is_saved() {
    // Prose, a fence, an object holding the array, and a trailing comma.
    let teacher = "Here are three improved prompts:\n```json\n{\"prompts\": [\n  \"POOR candidate one: describe the frame.\",\n  \"GOOD candidate: name every person and object, flag hazards, end with CONFIDENCE.\",\n  \"POOR candidate three: list what you see.\",\n]}\n```\nGood luck!";
    let s = setup(teacher).await;
    let (outcome, events) = run(s.ctx.clone()).await;
    let o = outcome.expect("a finished run");
    assert_eq!(o.rows.len(), 4, "baseline + 3 candidates");
    assert_eq!(o.rows[0].prompt, BASE);
    assert!(o.rows[2].prompt.starts_with("GOOD"));
    assert_eq!(o.winner, Some(2), "{}", o.reason);
    assert!(o.rows[2].train.unwrap() > o.rows[0].train.unwrap() + 0.3);
    assert!(o.rows[2].interval.unwrap().lo > 0.0);
    assert!(o.applied.is_some());
    assert_eq!(skill_on_disk(&s.ctx), o.rows[2].prompt);
    // History: the text and its sidecar.
    let h = history(&s.ctx);
    assert_eq!(h.len(), 2, "{h:?}");
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&h[0]).unwrap()).unwrap();
    assert_eq!(sidecar["eval_hash"], o.eval_hash);
    assert_eq!(sidecar["student_model"], STUDENT);
    assert_eq!(sidecar["teacher_model"], TEACHER);
    assert!(sidecar["train_score"].as_f64().unwrap() > 0.5);
    // The matrix filled in live: one score per (row, case).
    let scored = events
        .iter()
        .filter(|e| matches!(e, UpskillEvent::CaseScored { .. }))
        .count();
    assert_eq!(scored, 4 * 6);
    // The meta-prompt told the teacher what failed.
    let treq = &s._teacher.chat_requests()[0];
    let meta = &treq.messages.last().unwrap().content;
    assert!(meta.contains("lighter"), "failures are listed: {meta}");
    assert!(meta.contains("no parseable CONFIDENCE"), "{meta}");
    assert!(treq.format.is_some());
    // Every student call carried the skill under test as system prompt.
    let systems: std::collections::HashSet<String> = s
        .student
        .chat_requests()
        .iter()
        .map(|r| r.messages[0].content.clone())
        .collect();
    assert_eq!(systems.len(), 4);
}

#[tokio::test]
async fn better_on_train_but_worse_on_holdout_is_not_applied() {
    // OVERFIT is perfect on train and poor on holdout; the baseline is the reverse.
    let s = setup("[\"OVERFIT: describe the train scenes you know.\"]").await;
    let mut ctx = s.ctx.clone();
    ctx.current_skill = "HOLDOUT-GOOD baseline".into();
    s.student.set_handler(|req: &ChatRequest| {
        let skill = req.messages[0].content.clone();
        let user = req.messages.last().unwrap().content.clone();
        let holdout = user.contains("ladder") || user.contains("office");
        let good =
            (skill.contains("OVERFIT") && !holdout) || (skill.contains("HOLDOUT-GOOD") && holdout);
        Reply::text(if good {
            good_answer(&user)
        } else {
            poor_answer(&user)
        })
    });
    let (outcome, _) = run(ctx.clone()).await;
    let o = outcome.unwrap();
    assert!(o.rows[1].train.unwrap() > o.rows[0].train.unwrap());
    assert!(o.rows[1].holdout.unwrap() < o.rows[0].holdout.unwrap());
    assert_eq!(o.winner, None);
    assert!(o.reason.contains("worse on holdout"), "{}", o.reason);
    assert_eq!(skill_on_disk(&ctx), BASE, "the skill file is untouched");
    assert!(history(&ctx).is_empty());
}

#[tokio::test]
async fn no_candidate_beats_the_baseline_so_the_skill_stays() {
    let s = setup("[\"POOR one: describe the frame.\", \"POOR two: list the objects.\"]").await;
    let (outcome, _) = run(s.ctx.clone()).await;
    let o = outcome.unwrap();
    assert_eq!(o.winner, None);
    assert!(o.reason.contains("below the required"), "{}", o.reason);
    assert!(o.applied.is_none());
    assert_eq!(skill_on_disk(&s.ctx), BASE);
}

#[tokio::test]
async fn teacher_reply_without_prompts_fails_clearly() {
    let s = setup("I cannot help with that.").await;
    let (outcome, events) = run(s.ctx.clone()).await;
    assert!(outcome.is_none());
    let failed = events.iter().find_map(|e| match e {
        UpskillEvent::Failed(m) => Some(m.clone()),
        _ => None,
    });
    assert!(failed.unwrap().contains("no usable candidates"));
    assert_eq!(skill_on_disk(&s.ctx), BASE);
}

#[tokio::test]
async fn cancel_stops_further_student_calls() {
    let s = setup("[\"GOOD candidate: describe everything.\"]").await;
    s.student.set_handler(|req: &ChatRequest| {
        Reply::Delayed(Duration::from_millis(150), Box::new(student_handler(req)))
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let task = tokio::spawn(pipeline::run(s.ctx.clone(), tx, cancel_rx));
    // Cancel after the first scored case.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(UpskillEvent::CaseScored { .. })) => break,
            Ok(Some(_)) => {}
            other => panic!("no progress: {other:?}"),
        }
    }
    cancel_tx.send(true).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("cancel is prompt")
        .unwrap();
    assert!(outcome.is_none());
    let calls = s.student.chat_requests().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.student.chat_requests().len(),
        calls,
        "no calls after cancel"
    );
    assert!(calls < 6, "cancelled early: {calls} calls");
    let mut saw_cancelled = false;
    while let Ok(e) = rx.try_recv() {
        saw_cancelled |= matches!(e, UpskillEvent::Cancelled);
    }
    assert!(saw_cancelled);
    assert_eq!(skill_on_disk(&s.ctx), BASE);
}

#[test]
fn eval_dir_is_read_from_disk_each_time() {
    // A guard that the CASES above are a valid eval set for the loader.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("cases.toml"), CASES).unwrap();
    let set = load_eval_set(Path::new(d.path())).unwrap();
    assert_eq!(set.cases.len(), 6);
}

/// The report the run wrote (from its `Report` event).
fn report(events: &[UpskillEvent]) -> serde_json::Value {
    let path = events
        .iter()
        .find_map(|e| match e {
            UpskillEvent::Report(p) => Some(p.clone()),
            _ => None,
        })
        .expect("a Report event");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn phases(events: &[UpskillEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            UpskillEvent::Phase(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn fewer_candidates_than_asked_are_asked_for_once_more_and_said() {
    let s = setup("[\"GOOD one: describe everything you see.\"]").await;
    s._teacher.push_reply(Reply::text(
        "[\"POOR two: describe the frame.\", \"POOR three: list the objects.\"]",
    ));
    let (outcome, events) = run(s.ctx.clone()).await;
    let o = outcome.expect("a finished run");
    assert_eq!(o.rows.len(), 4, "the missing two came on the second ask");
    let p = phases(&events);
    assert!(
        p.iter().any(|x| x == "the teacher wrote 1 of 3 candidates; asking once more for the missing 2"),
        "{p:?}"
    );
    let asks = s._teacher.chat_requests();
    assert_eq!(asks.len(), 2);
    assert!(asks[1]
        .messages
        .last()
        .unwrap()
        .content
        .contains("Write 2 different"));
    let r = report(&events);
    assert_eq!(r["status"], "finished");
    assert_eq!(r["teacher_replies"].as_array().unwrap().len(), 2);
    assert_eq!(r["teacher_replies"][1]["asked"], 2);
    assert_eq!(r["kept"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_scene_description_is_rejected_with_its_reason_and_the_shortfall_said() {
    let scene = "A person is standing on the floor, holding a wooden chair. The room is bright.";
    let s = setup(&format!(
        "[\"{scene}\", \"GOOD: describe everything you see.\"]"
    ))
    .await;
    let mut ctx = s.ctx.clone();
    ctx.candidates = 2;
    // The second ask gets a reply with no prompts at all.
    s._teacher.push_reply(Reply::text("Sorry, no more ideas."));
    let (outcome, events) = run(ctx).await;
    let o = outcome.expect("a finished run with the one instruction");
    assert_eq!(o.rows.len(), 2);
    assert!(o.rows[1].prompt.starts_with("GOOD"));
    let dropped: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match e {
            UpskillEvent::Dropped(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert_eq!(dropped[0].0, scene);
    assert!(
        dropped[0].1.contains("not an instruction"),
        "{}",
        dropped[0].1
    );
    assert!(phases(&events)
        .iter()
        .any(|x| x == "the teacher wrote 1 of 2 candidates; scoring those"));
    let r = report(&events);
    assert_eq!(r["rejected"][0]["prompt"], scene);
    assert!(r["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("scene description"));
    // The teacher's raw replies are kept, word for word.
    assert!(r["teacher_replies"][0]["reply"]
        .as_str()
        .unwrap()
        .contains("wooden chair"));
    assert_eq!(r["teacher_replies"][1]["reply"], "Sorry, no more ideas.");
    // Rows have the eval --json shape: label, prompt, train, holdout, cases.
    for k in ["label", "prompt", "train", "holdout", "cases"] {
        assert!(
            r["rows"][1].get(k).is_some(),
            "row has {k}: {}",
            r["rows"][1]
        );
    }
    assert_eq!(r["rows"][1]["cases"].as_array().unwrap().len(), 6);
    assert!(r["rows"][1]["cases"][0]["answer"].is_string());
}

#[tokio::test]
async fn every_candidate_is_scored_with_the_output_contract_appended() {
    // This candidate says nothing about the confidence line or the Safety rule.
    let s = setup("[\"GOOD: describe every person and object you see.\"]").await;
    let mut ctx = s.ctx.clone();
    ctx.candidates = 1;
    let (outcome, _) = run(ctx).await;
    let o = outcome.unwrap();
    assert_eq!(
        o.rows[1].prompt,
        "GOOD: describe every person and object you see."
    );
    let systems: Vec<String> = s
        .student
        .chat_requests()
        .iter()
        .map(|r| r.messages[0].content.clone())
        .collect();
    assert_eq!(systems.len(), 12);
    for sys in &systems {
        assert!(sys.ends_with(OUTPUT_CONTRACT), "{sys}");
    }
    assert!(systems
        .iter()
        .any(|x| x.starts_with("GOOD: describe every person")));
    // The teacher was shown the fixed part and told not to repeat it.
    let meta = s._teacher.chat_requests()[0]
        .messages
        .last()
        .unwrap()
        .content
        .clone();
    assert!(meta.contains(OUTPUT_CONTRACT));
    assert!(meta.contains("do not repeat the answer format"));
}

#[tokio::test]
async fn a_failed_run_leaves_a_report_too() {
    let s = setup("I cannot help with that.").await;
    let (outcome, events) = run(s.ctx.clone()).await;
    assert!(outcome.is_none());
    let r = report(&events);
    assert_eq!(r["status"], "failed");
    assert!(r["error"]
        .as_str()
        .unwrap()
        .contains("no usable candidates"));
    assert_eq!(
        r["rows"].as_array().unwrap().len(),
        1,
        "the baseline row is kept"
    );
    assert_eq!(r["teacher_replies"][0]["reply"], "I cannot help with that.");
    assert_eq!(r["scoring"]["temperature"], 0.0);
}

/// Every `Dropped` (candidate, reason) of a run.
fn dropped(events: &[UpskillEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            UpskillEvent::Dropped(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test]
async fn a_teacher_handing_back_the_current_skills_sentences_is_rejected_and_asked_again() {
    const CURRENT: &str = "You watch a room through a webcam. Describe every person, what they \
                           hold and what they do.\n\nSay plainly when something is unsafe: fire, \
                           smoke, a knife, a fall.";
    // A small teacher's reply: the current skill cut in pieces, word for word.
    let s = setup(
        "{\"prompts\": [\"You watch a room through a webcam.\", \"Say plainly when something is unsafe: fire, smoke, a knife, a fall.\"]}",
    )
    .await;
    s._teacher.push_reply(Reply::text(
        "{\"prompts\": [\"GOOD: name every person and object and flag hazards.\", \"Describe every person, what they hold and what they do.\"]}",
    ));
    let mut ctx = s.ctx.clone();
    ctx.current_skill = CURRENT.into();
    ctx.candidates = 2;
    let (outcome, events) = run(ctx).await;
    let o = outcome.expect("a finished run with the one real candidate");
    assert_eq!(
        o.rows.len(),
        2,
        "{:?}",
        o.rows.iter().map(|r| &r.prompt).collect::<Vec<_>>()
    );
    assert!(o.rows[1].prompt.starts_with("GOOD"));
    // Each piece rejected with its reason, on the event the screen and the CLI show.
    let d = dropped(&events);
    assert_eq!(d.len(), 3, "{d:?}");
    assert_eq!(d[0].0, "You watch a room through a webcam.");
    assert_eq!(
        d[0].1,
        "a fragment of the current skill (7 of its 7 words in one run of it)"
    );
    assert!(
        d[1].1.starts_with("a fragment of the current skill"),
        "{d:?}"
    );
    assert!(
        d[2].1.starts_with("a fragment of the current skill"),
        "{d:?}"
    );
    // Asked once more for what was missing, told which were rejected and why.
    let p = phases(&events);
    assert!(
        p.iter().any(|x| x == "the teacher wrote 0 of 2 candidates; asking once more for the missing 2"),
        "{p:?}"
    );
    let asks = s._teacher.chat_requests();
    assert_eq!(asks.len(), 2);
    let second = &asks[1].messages.last().unwrap().content;
    assert!(
        second.contains("Your earlier candidates were rejected and not scored:\n- \"You watch a room through a webcam.\": a fragment of the current skill"),
        "{second}"
    );
    assert!(!asks[0]
        .messages
        .last()
        .unwrap()
        .content
        .contains("were rejected"));
    // The report keeps every rejection with its reason.
    let r = report(&events);
    let reasons: Vec<&str> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons
        .iter()
        .all(|x| x.starts_with("a fragment of the current skill")));
    // No student call was spent on a fragment: the baseline row and one candidate.
    assert_eq!(s.student.chat_requests().len(), 2 * 6);
}

#[tokio::test]
async fn a_student_that_never_writes_the_confidence_line_is_warned_about_before_candidates() {
    let s = setup("[\"GOOD: describe everything you see.\"]").await;
    // Good descriptions, never the last line.
    s.student.set_handler(|req: &ChatRequest| {
        let user = req.messages.last().unwrap().content.clone();
        let answer = good_answer(&user);
        Reply::text(answer.lines().next().unwrap())
    });
    let mut ctx = s.ctx.clone();
    ctx.candidates = 1;
    let (outcome, events) = run(ctx).await;
    let o = outcome.expect("a finished run");
    let warning = "0 of 6 answers ended with a confidence line: every live frame would escalate";
    let warned_at = events
        .iter()
        .position(|e| matches!(e, UpskillEvent::Warning(w) if w == warning))
        .unwrap_or_else(|| panic!("the warning: {events:?}"));
    let first_candidate_call = events
        .iter()
        .position(|e| matches!(e, UpskillEvent::CaseScored { row: 1, .. }))
        .unwrap();
    assert!(
        warned_at < first_candidate_call,
        "said before scoring candidates"
    );
    // The share per row, in the outcome and on RowDone.
    assert_eq!((o.rows[0].format.ok, o.rows[0].format.of), (0, 6));
    assert!(events.iter().any(|e| matches!(
        e,
        UpskillEvent::RowDone { row: 0, score } if score.format.ok == 0 && score.format.of == 6
    )));
    let r = report(&events);
    assert_eq!(r["warnings"][0], warning);
    // The teacher hears about it first.
    let meta = s._teacher.chat_requests()[0]
        .messages
        .last()
        .unwrap()
        .content
        .clone();
    let failures = meta.split("(most important first):\n").nth(1).unwrap();
    assert!(
        failures.starts_with("MOST IMPORTANT — answers that did not end with the CONFIDENCE line (0 of 4 train answers did)"),
        "{failures}"
    );
}

#[tokio::test]
async fn the_brief_shows_confident_and_wrong_answers_right_after_format_failures() {
    let s = setup("[\"GOOD: describe everything you see.\"]").await;
    // Under the current skill: the dog case has no confidence line, the lighter case is
    // wrong but sure of it, the desk case is wrong and unsure, the smoke case is right.
    s.student.set_handler(|req: &ChatRequest| {
        let skill = req.messages[0].content.clone();
        let user = req.messages.last().unwrap().content.clone();
        if skill.contains("GOOD") {
            return Reply::text(good_answer(&user));
        }
        Reply::text(if user.contains("dog") {
            "A dog sleeping on a rug. No safety concerns."
        } else if user.contains("lighter") {
            "A person at a table. No safety concerns.\nCONFIDENCE: 0.95"
        } else if user.contains("laptop") {
            "Something on a table.\nCONFIDENCE: 0.3"
        } else {
            good_answer(&user)
        })
    });
    let mut ctx = s.ctx.clone();
    ctx.candidates = 1;
    let (outcome, _) = run(ctx).await;
    outcome.expect("a finished run");
    let meta = s._teacher.chat_requests()[0]
        .messages
        .last()
        .unwrap()
        .content
        .clone();
    let at = |needle: &str| {
        meta.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in:\n{meta}"))
    };
    // File order is lighter, desk, smoke, dog; the brief puts dog (no line) first, then
    // lighter (sure and wrong), then desk; smoke passed.
    assert!(at("- dog (") < at("- lighter ("), "{meta}");
    assert!(at("- lighter (") < at("- desk ("), "{meta}");
    assert!(!meta.contains("- smoke ("), "{meta}");
    assert!(
        meta.contains("Wrong while stating a confidence above 0.5"),
        "{meta}"
    );
    assert!(meta.contains("yet it stated CONFIDENCE: 0.95"), "{meta}");
    // Three of four train answers had the line: not "most", so not the loud heading.
    assert!(
        meta.contains(
            "First — answers that did not end with the CONFIDENCE line (3 of 4 train answers did)"
        ),
        "{meta}"
    );
}

#[tokio::test]
async fn a_candidate_that_describes_better_but_breaks_a_watch_does_not_win() {
    use gemmaedge_tui::watch::WatchSpec;
    let s = setup("[\"GOOD but BLIND: name every person and object, flag hazards.\"]").await;
    let mut ctx = s.ctx.clone();
    // Every case knows the garage door is shut.
    let cases = CASES.replace("safety = ", "watch = { garage_door = false }\nsafety = ");
    std::fs::write(ctx.config.paths.eval.join("cases.toml"), cases).unwrap();
    let door = WatchSpec::new("garage_door", "Is the garage door open?");
    ctx.eval = Arc::new(
        load_eval_set(&ctx.config.paths.eval)
            .unwrap()
            .watching(&[door])
            .unwrap(),
    );
    // The baseline describes poorly and answers the watch right; the candidate describes
    // well and says the door is open.
    s.student.set_handler(|req: &ChatRequest| {
        let skill = req.messages[0].content.clone();
        let user = req.messages.last().unwrap().content.clone();
        assert!(
            skill.contains("- garage_door: \"Is the garage door open?\""),
            "{skill}"
        );
        Reply::text(if skill.contains("BLIND") {
            good_answer(&user).replace("\nCONFIDENCE", "\nWATCH garage_door: yes\nCONFIDENCE")
        } else {
            format!("{}\nWATCH garage_door: no", poor_answer(&user))
        })
    });
    let (outcome, _) = run(ctx.clone()).await;
    let o = outcome.unwrap();
    assert!(o.rows[1].train.unwrap() > o.rows[0].train.unwrap() + 0.3);
    assert_eq!(o.rows[0].watches["garage_door"].right, 6);
    assert_eq!(o.rows[1].watches["garage_door"].right, 0);
    assert_eq!(o.winner, None, "{}", o.reason);
    assert!(
        o.reason
            .contains("breaks watch garage_door: 0/6 answered right vs 6/6 now"),
        "{}",
        o.reason
    );
    assert_eq!(skill_on_disk(&ctx), BASE, "the skill file is untouched");
    // The teacher writing candidates was told the watch.
    let meta = &s._teacher.chat_requests()[0];
    let meta = &meta.messages.last().unwrap().content;
    assert!(
        meta.contains("- garage_door: \"Is the garage door open?\""),
        "{meta}"
    );
}
