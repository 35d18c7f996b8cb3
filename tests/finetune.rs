//! Fine-tune readiness and export with the real binary over a prepared history store (real
//! SQLite, rows written as the engine writes them): the three verdicts, an `hf` export
//! loaded by the real Hugging Face `datasets` (the fine-tune tier, `scripts/finetune-setup`;
//! without it that part says SKIPPED, with `GEMMAEDGE_FINETUNE=required` it fails), a
//! `sharegpt` export checked against LLaMA-Factory's documented fields, and bad input.
//! (`eval --compare` of two student models is `tests/eval_compare.rs`.)

use chrono::{DateTime, Duration, Utc};
use gemmaedge_tui::event::Event;
use gemmaedge_tui::history::rows::{apply, Origin, Spans};
use gemmaedge_tui::policy::Reason;
use gemmaedge_tui::roles::verdict::Verdict;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

/// One frame for the store: its hash, label, and (optionally) its image on disk.
struct Frame {
    dhash: u64,
    verdict: Verdict,
    jpeg: Option<Vec<u8>>,
}

fn verdict(agrees: bool, safety: bool, summary: &str) -> Verdict {
    Verdict {
        agrees: Some(agrees),
        safety_relevant: Some(safety),
        summary: summary.into(),
        missed: if agrees {
            vec![]
        } else {
            vec!["a pan on the stove".into()]
        },
        level: Some(u8::from(safety)),
        title: if safety {
            "Pan smoking on the stove".into()
        } else {
            String::new()
        },
        ..Verdict::default()
    }
}

/// Hashes far apart from each other.
fn far(i: u64) -> u64 {
    (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A small JPEG of random 8×6 blocks from `seed` (distinct seeds, distinct pictures) and
/// its hash.
fn picture(seed: u64) -> (Vec<u8>, u64) {
    let mut r = gemmaedge_tui::eval::bootstrap::SplitMix64::new(seed);
    let blocks: Vec<u8> = (0..48).map(|_| r.next_u64() as u8).collect();
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        let v = blocks[(y / 8 * 8 + x / 8) as usize];
        image::Rgb([v, v / 2, 255 - v])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(&img)
        .unwrap();
    // The engine hashes the JPEG it keeps, as decoded.
    let decoded = image::load_from_memory(&out).unwrap().to_rgb8();
    (out.clone(), gemmaedge_tui::frame::dhash::dhash(&decoded))
}

/// A test folder: config (paths under it), the store written from `frames` (escalated,
/// then judged; images saved where the store says), upskill reports with `gains`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(frames: &[Frame], gains: &[f64], extra_config: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let logs = d.join("logs");
        std::fs::create_dir_all(logs.join("frames")).unwrap();
        std::fs::create_dir_all(d.join("skills")).unwrap();
        std::fs::create_dir_all(d.join("eval/images")).unwrap();
        std::fs::write(
            d.join("skills/skill.txt"),
            "Watch the kitchen. Name smoke.\n",
        )
        .unwrap();
        std::fs::write(
            d.join("config.toml"),
            format!(
                "[paths]\nskills = \"{0}/skills\"\neval = \"{0}/eval\"\nlogs = \"{0}/logs\"\n{extra_config}",
                d.display()
            ),
        )
        .unwrap();
        let mut conn = gemmaedge_tui::history::schema::open(&logs.join("history.db"))
            .unwrap()
            .conn;
        let tx = conn.transaction().unwrap();
        let origin = Origin {
            session: "20261201-080000".into(),
            device: "kitchen".into(),
        };
        let mut spans = Spans::default();
        let t0: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        for (i, f) in frames.iter().enumerate() {
            let seq = i as u64 + 1;
            let at = t0 + Duration::minutes(i as i64);
            let path = logs.join(format!("frames/20261201-080000-{seq:06}.jpg"));
            if let Some(j) = &f.jpeg {
                std::fs::write(&path, j).unwrap();
            }
            let evs = [
                Event::FrameTaken {
                    seq,
                    captured_at: at,
                    label: "camera".into(),
                    width: 64,
                    height: 48,
                    jpeg_bytes: 1,
                    superseded: 0,
                    dhash: Some(format!("{:016x}", f.dhash)),
                    image: None,
                },
                Event::Escalated {
                    seq,
                    reasons: vec![Reason::Forced],
                    queue_len: 1,
                    frame_path: Some(path),
                },
                Event::TeacherVerdict {
                    seq,
                    verdict: f.verdict.clone(),
                    latency_ms: 10,
                },
            ];
            for ev in &evs {
                apply(&tx, &origin, at, ev, &mut spans).unwrap();
            }
        }
        tx.commit().unwrap();
        for (i, g) in gains.iter().enumerate() {
            let report = serde_json::json!({
                "started_at": format!("2026-12-0{}T10:00:00Z", i + 1),
                "finished_at": format!("2026-12-0{}T10:05:00Z", i + 1),
                "status": "finished", "student": "gemma4:e2b",
                "rows": [{"train": 0.5}, {"train": 0.5 + g}],
            });
            std::fs::write(
                logs.join(format!("upskill-2026120{}-100000.000.json", i + 1)),
                report.to_string(),
            )
            .unwrap();
        }
        Setup { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(self.path().join("config.toml"))
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn status(&self) -> serde_json::Value {
        let (code, out, err) = self.run(&["finetune", "status", "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    }
}

/// `n` labelled frames without images, one in three corrected (the first of each three),
/// every tenth safety-relevant, plus `dups` near-duplicates of the first ones.
fn labelled(n: usize, dups: usize) -> Vec<Frame> {
    let mut f: Vec<Frame> = (0..n)
        .map(|i| Frame {
            dhash: far(i as u64),
            verdict: verdict(i % 3 != 0, i % 10 == 0, "A kitchen."),
            jpeg: None,
        })
        .collect();
    for i in 0..dups {
        f.push(Frame {
            dhash: far(i as u64) ^ 0b101,
            verdict: verdict(i % 3 != 0, false, "A kitchen again."),
            jpeg: None,
        });
    }
    f
}

#[test]
fn readiness_says_not_yet_prompting_pays_and_worth_it() {
    // 37 distinct frames (and 20 near-duplicates that do not count).
    let s = Setup::new(&labelled(37, 20), &[], "");
    let r = s.status();
    assert_eq!(r["advice"], "not_yet");
    assert_eq!(
        r["verdict"],
        "not yet: 37 distinct labelled frames (want ≥ 100)"
    );
    assert_eq!(r["frames"]["total"], 57);
    let (code, text, _) = s.run(&["finetune", "status"]);
    assert_eq!(code, 0);
    assert!(text.starts_with("not yet: 37 distinct"), "{text}");
    assert!(text.contains("teacher corrections by week"), "{text}");
    // `check` has a row with the verdict (it fails elsewhere: no servers, no camera).
    let (_, table, _) = s.run(&["check"]);
    let row = table
        .lines()
        .find(|l| l.contains("fine-tune"))
        .unwrap_or("");
    assert!(
        row.starts_with("ok") && row.contains("not yet: 37 distinct labelled frames"),
        "{table}"
    );

    // Enough frames, but the last upskill run still gained.
    let s = Setup::new(&labelled(412, 0), &[0.001, 0.0, 0.061], "");
    let r = s.status();
    assert_eq!(r["advice"], "prompting_pays");
    assert_eq!(
        r["verdict"],
        "prompting still pays: the last run gained +0.061"
    );

    // Enough frames and three runs below the margin (upskill.min_improvement = 0.02).
    let s = Setup::new(&labelled(412, 0), &[0.09, 0.004, 0.001, -0.003], "");
    let r = s.status();
    assert_eq!(r["advice"], "worth_it");
    let corrected = (0..412).filter(|i| i % 3 == 0).count();
    let pct = (corrected as f64 * 100.0 / 412.0).round();
    assert_eq!(
        r["verdict"],
        format!(
            "worth it: 412 distinct labelled frames, the last 3 upskill runs gained ≤ 0.004, \
             the teacher corrects {pct}% of escalations"
        )
    );
    assert_eq!(r["frames"]["corrected"], corrected);
    assert_eq!(r["runs"].as_array().unwrap().len(), 4);
    // The thresholds are config keys.
    let s = Setup::new(
        &labelled(37, 0),
        &[0.0, 0.0, 0.0],
        "[finetune]\nmin_frames = 30\n",
    );
    assert_eq!(s.status()["advice"], "worth_it");
}

/// The export scene: 12 distinct pictures (frame 5 is also an eval case's image), two
/// near-duplicates of frame 1, a cut verdict, an unreadable one, and a frame missing on
/// disk. Model text tries to name files.
fn export_scene() -> Setup {
    let mut frames = Vec::new();
    for i in 0..12u64 {
        let (jpeg, hash) = picture(i + 100);
        let mut v = verdict(
            i % 3 == 0,
            i % 4 == 0,
            "../../etc/passwd \"}]} a pan smokes on the stove",
        );
        v.title = "../evil".into();
        frames.push(Frame {
            dhash: hash,
            verdict: v,
            jpeg: Some(jpeg),
        });
    }
    let (j1, h1) = picture(100);
    for flip in [1u64, 0b11] {
        frames.push(Frame {
            dhash: h1 ^ flip,
            verdict: verdict(false, false, "Same again."),
            jpeg: Some(j1.clone()),
        });
    }
    let (j, h) = picture(500);
    let mut cut = verdict(false, true, "Cut.");
    cut.truncated = true;
    frames.push(Frame {
        dhash: h,
        verdict: cut,
        jpeg: Some(j),
    });
    let (j, h) = picture(501);
    let mut raw = verdict(false, true, "Raw.");
    raw.raw = Some("not json".into());
    frames.push(Frame {
        dhash: h,
        verdict: raw,
        jpeg: Some(j),
    });
    let (_, h) = picture(502);
    frames.push(Frame {
        dhash: h,
        verdict: verdict(false, false, "Gone."),
        jpeg: None,
    });
    let s = Setup::new(&frames, &[], "");
    let (eval_jpeg, _) = picture(105);
    std::fs::write(s.path().join("eval/images/kitchen.jpg"), eval_jpeg).unwrap();
    std::fs::write(
        s.path().join("eval/cases.toml"),
        "[[case]]\nid = \"kitchen\"\nimage = \"images/kitchen.jpg\"\nexpect = [\"pan\"]\nsafety = false\n",
    )
    .unwrap();
    s
}

fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The frame id of eval image's twin: frame 6 (picture 105) is row id 6.
const EVAL_TWIN: &str = "00000006.jpg";

#[test]
fn hf_export_has_the_examples_splits_and_files_the_trainers_read() {
    let s = export_scene();
    let out = s.path().join("out");
    let (code, text, err) = s.run(&[
        "finetune",
        "export",
        out.to_str().unwrap(),
        "--holdout",
        "0.2",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("wrote 12 examples")
            && text
                .contains("left out 2 near-duplicates and 1 frames missing on disk; 1 eval images"),
        "{text}"
    );
    let train = jsonl(&out.join("train/metadata.jsonl"));
    let test = jsonl(&out.join("test/metadata.jsonl"));
    assert_eq!(train.len() + test.len(), 12);
    assert!(!test.is_empty() && !train.is_empty());
    assert!(test.iter().any(|r| r["file_name"] == EVAL_TWIN));
    assert!(!train.iter().any(|r| r["file_name"] == EVAL_TWIN));
    for (split, rows) in [("train", &train), ("test", &test)] {
        for r in rows.iter() {
            let f = r["file_name"].as_str().unwrap();
            assert!(
                f.len() == 12 && f.ends_with(".jpg") && f[..8].bytes().all(|b| b.is_ascii_digit()),
                "{f}"
            );
            assert!(out.join(split).join(f).is_file());
            let m = &r["messages"];
            assert_eq!(m[0]["role"], "system");
            assert!(m[0]["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("Watch the kitchen. Name smoke."));
            assert_eq!(m[1]["role"], "user");
            assert_eq!(m[1]["content"][0]["type"], "image");
            assert_eq!(m[2]["role"], "assistant");
            let target = m[2]["content"][0]["text"].as_str().unwrap();
            assert!(target.ends_with("\nCONFIDENCE: 0.9"), "{target}");
        }
    }
    // Only the files an export writes: no name from model text anywhere.
    assert_eq!(
        names(&out),
        vec![
            ".gemmaedge-export",
            "Modelfile",
            "README.md",
            "test",
            "train"
        ]
    );
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.contains("may show people"), "{card}");
    assert!(card.contains("kitchen"), "{card}");
    let modelfile = std::fs::read_to_string(out.join("Modelfile")).unwrap();
    assert!(modelfile.contains("\nFROM gemma4:e2b\n"), "{modelfile}");
    assert!(modelfile.contains("\nADAPTER ./adapter\n"), "{modelfile}");
    assert!(modelfile.contains("SYSTEM \"\"\"Watch the kitchen. Name smoke."));

    // The real Hugging Face datasets library loads it.
    let Some(python) = finetune_python() else {
        return;
    };
    let hf_home = s.path().join("hf-home");
    let out_py = Command::new(python)
        .arg("-c")
        .arg(LOAD_PY)
        .arg(&out)
        .env("HF_HOME", &hf_home)
        .env("HF_DATASETS_OFFLINE", "1")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out_py.status.success(),
        "{}",
        String::from_utf8_lossy(&out_py.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out_py.stdout).unwrap();
    assert_eq!(got["train"].as_array().unwrap().len(), train.len());
    assert_eq!(got["test"].as_array().unwrap().len(), test.len());
    let mut seen = std::collections::HashSet::new();
    for split in ["train", "test"] {
        for r in got[split].as_array().unwrap() {
            assert_eq!(r["size"], serde_json::json!([64, 48]), "images decode");
            assert_eq!(
                r["roles"],
                serde_json::json!(["system", "user", "assistant"])
            );
            assert_eq!(r["user_types"], serde_json::json!(["image", "text"]));
            assert!(
                seen.insert(r["hash"].as_str().unwrap().to_string()),
                "splits disjoint, no duplicate picture"
            );
        }
    }
}

/// Loads DIR with `datasets` and prints, per split and row: the decoded image's size and a
/// hash of its pixels, the roles, the user turn's part types.
const LOAD_PY: &str = r#"
import hashlib, json, sys
from datasets import load_dataset
ds = load_dataset("imagefolder", data_dir=sys.argv[1])
out = {}
for split in ds:
    rows = []
    for r in ds[split]:
        img = r["image"].convert("RGB")
        m = r["messages"]
        rows.append({
            "size": list(img.size),
            "hash": hashlib.sha256(img.tobytes()).hexdigest(),
            "roles": [x["role"] for x in m],
            "user_types": [c["type"] for c in m[1]["content"]],
        })
    out[split] = rows
print(json.dumps(out))
"#;

/// The fine-tune tier's Python, or None after saying SKIPPED (a failure when required).
fn finetune_python() -> Option<PathBuf> {
    let env = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/finetune/env");
    let python = std::fs::read_to_string(&env).ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("PYTHON=").map(PathBuf::from))
    });
    match python.filter(|p| p.exists()) {
        Some(p) => Some(p),
        None => {
            assert!(
                !std::env::var("GEMMAEDGE_FINETUNE").is_ok_and(|v| v == "required"),
                "GEMMAEDGE_FINETUNE=required but the fine-tune tier is not installed: run scripts/setup --tests"
            );
            eprintln!(
                "\n*** SKIPPED: the fine-tune tier is not installed (no target/finetune/env): \
                 the export was not loaded with Hugging Face datasets. Run scripts/finetune-setup.\n"
            );
            None
        }
    }
}

#[test]
fn sharegpt_export_has_llama_factory_fields() {
    let s = export_scene();
    let out = s.path().join("lf");
    let (code, _, err) = s.run(&[
        "finetune",
        "export",
        out.to_str().unwrap(),
        "--format",
        "sharegpt",
        "--only",
        "corrected",
    ]);
    assert_eq!(code, 0, "{err}");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("dataset_info.json")).unwrap()).unwrap();
    let mut n = 0;
    for name in ["gemmaedge_train", "gemmaedge_test"] {
        let entry = &info[name];
        assert_eq!(entry["formatting"], "sharegpt");
        assert_eq!(entry["columns"]["messages"], "conversations");
        assert_eq!(entry["columns"]["system"], "system");
        assert_eq!(entry["columns"]["images"], "images");
        let file = entry["file_name"].as_str().unwrap();
        let recs: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(out.join(file)).unwrap()).unwrap();
        for r in &recs {
            let conv = r["conversations"].as_array().unwrap();
            // Human in odd positions, gpt in even (LLaMA-Factory's rule), one `<image>` per image.
            assert_eq!(conv[0]["from"], "human");
            assert_eq!(conv[1]["from"], "gpt");
            let images = r["images"].as_array().unwrap();
            let tokens = conv[0]["value"]
                .as_str()
                .unwrap()
                .matches("<image>")
                .count();
            assert_eq!(tokens, images.len());
            assert_eq!(images.len(), 1);
            assert!(out.join(images[0].as_str().unwrap()).is_file());
            assert!(r["system"].as_str().unwrap().contains("CONFIDENCE"));
            assert!(conv[1]["value"]
                .as_str()
                .unwrap()
                .contains("Also in the frame: a pan on the stove."));
        }
        n += recs.len();
    }
    // Corrected only: of the 12 distinct pictures those with i % 3 != 0 (8), frame 1's
    // near-duplicates are corrected but dropped as duplicates of the first corrected one
    // only if frame 1 itself is corrected (it is not: i = 0 agrees) — so one of them stays.
    assert_eq!(n, 9);
}

#[test]
fn bad_input_is_refused_with_its_fix() {
    let s = export_scene();
    let out = s.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let (code, _, err) = s.run(&["finetune", "export", out.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is not empty") && err.contains("--force"),
        "{err}"
    );
    // --force does not replace a folder that is not an export.
    let (code, _, err) = s.run(&["finetune", "export", out.to_str().unwrap(), "--force"]);
    assert_eq!(code, 2);
    assert!(err.contains("does not hold an earlier export"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    // An earlier export is replaced with --force, and only with it.
    let ex = s.path().join("ex");
    assert_eq!(s.run(&["finetune", "export", ex.to_str().unwrap()]).0, 0);
    assert_eq!(s.run(&["finetune", "export", ex.to_str().unwrap()]).0, 2);
    let (code, _, err) = s.run(&[
        "finetune",
        "export",
        ex.to_str().unwrap(),
        "--force",
        "--format",
        "sharegpt",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(ex.join("dataset_info.json").is_file() && !ex.join("train").exists());
    // An empty folder is fine without --force.
    let empty = s.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(s.run(&["finetune", "export", empty.to_str().unwrap()]).0, 0);
    assert!(empty.join("train/metadata.jsonl").is_file());
    // Nothing left behind beside it.
    assert!(!names(s.path())
        .iter()
        .any(|n| n.contains("partial") || n.contains("replaced")));
    // A path nobody can write: a folder under a file.
    let (code, _, err) = s.run(&["finetune", "export", "/dev/null/set"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot write to /dev/null"), "{err}");
    // Bad holdout.
    let (code, _, err) = s.run(&["finetune", "export", "x", "--holdout", "0.9"]);
    assert_eq!(code, 2);
    assert!(err.contains("0 to 0.5"), "{err}");
    // Nothing labelled in the span: exit 1.
    let (code, _, err) = s.run(&["finetune", "export", "y", "--since", "2030-01-01"]);
    assert_eq!(code, 1);
    assert!(err.contains("nothing to export"), "{err}");
    assert!(!s.path().join("y").exists());
    // No frames kept: say so and stop.
    let s2 = Setup::new(&labelled(5, 0), &[], "[privacy]\nsave_frames = false\n");
    let (code, _, err) = s2.run(&["finetune", "export", "z"]);
    assert_eq!(code, 1);
    assert!(err.contains("privacy.save_frames = false"), "{err}");
    // Frames all missing on disk: nothing to export, counted.
    let s3 = Setup::new(&labelled(5, 0), &[], "");
    let (code, _, err) = s3.run(&["finetune", "export", "z"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("5 chosen frames are all missing on disk"),
        "{err}"
    );
    // No store at all.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(
        empty.path().join("config.toml"),
        format!("[paths]\nlogs = \"{}/logs\"\n", empty.path().display()),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(empty.path().join("config.toml"))
        .args(["finetune", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no history yet"));
}
