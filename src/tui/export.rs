//! Saving one log entry: the JPEG the model saw and what was said about it.

use crate::files::atomic::write_atomic;
use crate::tui::screens::monitor::state::{Entry, TeacherState};
use chrono::Local;
use serde_json::json;
use std::io;
use std::path::{Path, PathBuf};

/// The entry as JSON: answer, confidence, reasons, and the teacher's state or verdict.
pub fn entry_json(entry: &Entry) -> serde_json::Value {
    let teacher = match &entry.teacher {
        TeacherState::None => json!({ "state": "not_escalated" }),
        TeacherState::Queued { pos } => json!({ "state": "queued", "position": pos }),
        TeacherState::Reviewing => json!({ "state": "reviewing" }),
        TeacherState::Verdict(v, ms) => {
            json!({ "state": "verdict", "verdict": v, "latency_ms": ms })
        }
        TeacherState::Failed(e) => json!({ "state": "failed", "error": e }),
        TeacherState::Dropped => json!({ "state": "dropped" }),
    };
    json!({
        "seq": entry.seq,
        "captured_at": entry.captured_at,
        "label": entry.label,
        "width": entry.width,
        "height": entry.height,
        "jpeg_bytes": entry.jpeg_bytes,
        "answer": entry.answer,
        "answered": entry.answered,
        "confidence": entry.confidence,
        "latency_ms": entry.latency_ms,
        "reasons": entry.reasons,
        "student_failed": entry.failed,
        "skill": entry.skill,
        "teacher": teacher,
    })
}

/// Write `<dir>/<YYYYmmdd-HHMMSS>-<seq>.jpg` (the frame as sent to the model) and the
/// matching `.json`. The time is the frame's capture time, local. Fails when the entry
/// has no frame image (none is invented).
pub fn save_entry(dir: &Path, entry: &Entry) -> io::Result<(PathBuf, PathBuf)> {
    let frame = entry.frame.as_ref().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("entry #{} has no frame image to save", entry.seq),
        )
    })?;
    let stem = format!(
        "{}-{}",
        entry
            .captured_at
            .with_timezone(&Local)
            .format("%Y%m%d-%H%M%S"),
        entry.seq
    );
    let jpg = dir.join(format!("{stem}.jpg"));
    let json_path = dir.join(format!("{stem}.json"));
    write_atomic(&jpg, &frame.jpeg)?;
    let mut text = crate::reading::sanitize::escape_json_invisibles(
        serde_json::to_string_pretty(&entry_json(entry)).map_err(io::Error::other)?,
    );
    text.push('\n');
    write_atomic(&json_path, text.as_bytes())?;
    Ok((jpg, json_path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::policy::Reason;
    use crate::roles::verdict::Verdict;
    use crate::tui::app::tests::{answer, app, frame};

    #[test]
    fn saves_jpeg_and_json() {
        let mut a = app();
        let img = crate::tui::images::tests::test_frame(32, 18);
        let mut ev = frame(7);
        if let Event::FrameTaken { image, .. } = &mut ev {
            *image = Some(img.clone());
        }
        a.handle_event(ev);
        a.handle_event(answer(
            7,
            "Smoke \u{1b}[2J near stove",
            Some(0.4),
            vec![Reason::Audit],
        ));
        a.handle_event(Event::TeacherVerdict {
            seq: 7,
            verdict: Verdict {
                agrees: Some(true),
                summary: "yes".into(),
                ..Verdict::default()
            },
            latency_ms: 900,
        });
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("logs/saved");
        let (jpg, js) = save_entry(&saved, a.monitor.entry(7).unwrap()).unwrap();
        assert_eq!(std::fs::read(&jpg).unwrap(), &img.jpeg[..]);
        let name = jpg.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.ends_with("-7.jpg"), "{name}");
        assert_eq!(name.len(), "YYYYmmdd-HHMMSS-7.jpg".len(), "{name}");
        assert_eq!(js.with_extension("jpg"), jpg);
        let text = std::fs::read_to_string(&js).unwrap();
        assert!(
            !text.contains('\u{1b}'),
            "control chars are escaped in JSON"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["answer"], "Smoke \u{1b}[2J near stove");
        assert!((v["confidence"].as_f64().unwrap() - 0.4).abs() < 1e-6);
        assert_eq!(v["reasons"][0]["kind"], "audit");
        assert_eq!(v["teacher"]["state"], "verdict");
        assert_eq!(v["teacher"]["verdict"]["agrees"], true);
        assert_eq!(v["teacher"]["latency_ms"], 900);
    }

    #[test]
    fn entry_without_frame_is_an_error() {
        let mut a = app();
        a.handle_event(frame(1));
        let dir = tempfile::tempdir().unwrap();
        let e = save_entry(dir.path(), a.monitor.entry(1).unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
