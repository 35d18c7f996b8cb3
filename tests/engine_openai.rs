//! The engine with hosts that speak the OpenAI-compatible API (vLLM, llama.cpp's server,
//! LM Studio), against the in-process fake of that wire format: the same scenarios as
//! the Ollama engine tests.

mod support;

use gemmaedge_tui::config::{Config, HostKind, SourceKind};
use gemmaedge_tui::engine::{self, EngineHandle, EngineOptions};
use gemmaedge_tui::event::{Command, Event, Health, Role};
use gemmaedge_tui::policy::Reason;
use std::path::Path;
use std::time::Duration;
use support::openai_server::{OpenAiTestServer, Reply};

const STUDENT: &str = "gemma-3-4b-it";
const TEACHER: &str = "Qwen/Qwen2.5-VL-72B-Instruct";

fn config(dir: &Path, student: &str, teacher: &str) -> Config {
    let mut c = Config::default();
    c.student.host = student.into();
    c.student.model = STUDENT.into();
    c.student.kind = HostKind::Openai;
    c.student.timeout_secs = 10;
    c.teacher.host = teacher.into();
    c.teacher.model = TEACHER.into();
    c.teacher.kind = HostKind::Openai;
    c.teacher.timeout_secs = 10;
    c.teacher.api_key = Some("team-key".into());
    c.source.kind = SourceKind::Folder;
    c.source.path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/images")
        .to_string_lossy()
        .into_owned();
    c.source.fps = 50.0;
    c.source.min_change = 0.0;
    c.policy.audit_every = 0;
    c.paths.logs = dir.join("logs");
    c.paths.skills = dir.join("skills");
    c
}

async fn run_to_end(mut h: EngineHandle) -> Vec<Event> {
    let mut events = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = h.events.recv().await {
            let stop = matches!(ev, Event::Stopped { .. });
            events.push(ev);
            if stop {
                break;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "engine stopped in time: {events:#?}");
    events
}

#[tokio::test]
async fn escalations_reach_an_openai_compatible_teacher_and_verdicts_come_back() {
    let student = OpenAiTestServer::start(&[STUDENT]).await;
    let teacher = OpenAiTestServer::start(&[TEACHER]).await;
    teacher.set_api_key(Some("team-key"));
    for r in [
        "A desk with a laptop.\nCONFIDENCE: 0.9",
        "A blurry shape.\nCONFIDENCE: 0.3",
        "Smoke rises near the stove.\nCONFIDENCE: 0.9",
        "Un café à 20°C 🔥 sur la table.\nCONFIDENCE: 0.8",
    ] {
        student.push_reply(Reply::full(r).split_utf8());
    }
    teacher.set_handler(|_| {
        Reply::text(r#"{"agrees": false, "safety_relevant": true, "summary": "Smoke by a pan.", "missed": ["pan"], "wrong": []}"#)
    });
    let dir = tempfile::tempdir().unwrap();
    let h = engine::start(
        config(dir.path(), &student.url(), &teacher.url()),
        EngineOptions {
            max_frames: Some(4),
        },
    )
    .unwrap();
    let events = run_to_end(h).await;
    let answers: Vec<(String, Vec<Reason>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::StudentAnswer {
                answer, reasons, ..
            } => Some((answer.clone(), reasons.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 4);
    assert!(answers[0].1.is_empty());
    assert!(matches!(answers[1].1[0], Reason::LowConfidence { .. }));
    // Escalated mid-answer (early escalation), the full answer agreeing.
    assert_eq!(
        answers[2].1,
        vec![Reason::SafetyEarly {
            keyword: "smoke".into(),
            needed: Some(true)
        }]
    );
    assert_eq!(
        answers[3].0,
        "Un café à 20°C 🔥 sur la table.\nCONFIDENCE: 0.8"
    );
    let verdicts = events
        .iter()
        .filter(
            |e| matches!(e, Event::TeacherVerdict { verdict, .. } if verdict.agrees == Some(false)),
        )
        .count();
    assert_eq!(verdicts, 2);
    let sreq = &student.chat_requests()[0];
    assert!(sreq.stream, "the student's answer is streamed (SSE)");
    assert_eq!(sreq.messages[0].role, "system");
    let treqs = teacher.chat_requests();
    assert_eq!(treqs.len(), 2);
    for r in &treqs {
        assert_eq!(r.header("authorization"), Some("Bearer team-key"));
        assert_eq!(r.response_format.as_ref().unwrap()["type"], "json_schema");
        let imgs = r.all_images();
        assert_eq!(imgs.len(), 1);
        assert!(
            image::load_from_memory(&imgs[0]).is_ok(),
            "a real JPEG as data URL"
        );
    }
}

#[tokio::test]
async fn an_openai_teacher_that_is_down_shows_offline_and_a_missing_model_is_named() {
    let student = OpenAiTestServer::start(&[STUDENT]).await;
    let teacher = OpenAiTestServer::start(&["some-other-model"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(
        config(dir.path(), &student.url(), &teacher.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Event::Health {
                role: Role::Teacher,
                health: Health::Offline { reason, hint },
            }) = h.events.recv().await
            {
                assert!(hint.contains("/v1/models"), "{hint}");
                return reason;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        reason,
        format!("model {TEACHER} is not served by {}", teacher.url())
    );
    h.commands.send(Command::Shutdown).unwrap();
    let _ = h.task.await;
}
