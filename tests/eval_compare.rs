//! `eval --student-model NAME` and `eval --compare A B` with the real binary against the
//! Ollama stand-in answering per model name: a better model's interval of B − A is above
//! zero, an equally good one's includes zero, a model the host does not serve is named.

mod support;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

/// An eval set of 16 text scenes, half with smoke (safety) and half with a cup.
fn compare_setup(student: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::create_dir_all(p.join("eval")).unwrap();
    std::fs::create_dir_all(p.join("skills")).unwrap();
    std::fs::write(p.join("skills/skill.txt"), "Describe the room.\n").unwrap();
    let mut cases = String::new();
    for i in 0..16 {
        let (text, word, safety) = if i % 2 == 0 {
            ("Smoke rises from a pan on the stove", "smoke", true)
        } else {
            ("A cup of coffee stands on the table", "cup", false)
        };
        cases.push_str(&format!(
            "[[case]]\nid = \"c{i}\"\ntext = \"{text} (scene {i}).\"\nexpect = [\"{word}\"]\nsafety = {safety}\nsplit = \"{}\"\n\n",
            if i % 4 == 3 { "holdout" } else { "train" }
        ));
    }
    std::fs::write(p.join("eval/cases.toml"), cases).unwrap();
    std::fs::write(
        p.join("config.toml"),
        format!(
            "[student]\nhost = \"{student}\"\nmodel = \"gemma4:e2b\"\ntimeout_secs = 10\n[paths]\nskills = \"{0}/skills\"\neval = \"{0}/eval\"\nlogs = \"{0}/logs\"\n",
            p.display()
        ),
    )
    .unwrap();
    d
}

#[test]
fn eval_compare_tells_a_better_model_from_an_equal_one() {
    use support::ollama_server::{OllamaTestServer, Reply};
    let server =
        OllamaTestServer::start_in_thread(&["gemma4:e2b", "gemma-edge-ft", "gemma-edge-copy"]);
    // The base model misses what it sees half the time; the fine-tuned one never does; the
    // other one as often as the base, on the other half of the cases.
    server.set_handler(|req| {
        let user = req.last_content("user").unwrap_or("").to_string();
        let smoke = user.contains("Smoke rises");
        let scene: u32 = user
            .split("(scene ")
            .nth(1)
            .and_then(|t| t.split(')').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let good = match req.model.as_str() {
            "gemma-edge-ft" => true,
            "gemma-edge-copy" => scene % 4 >= 2,
            _ => scene % 4 < 2,
        };
        Reply::text(match (good, smoke) {
            (true, true) => {
                "Smoke rises from a pan.\nSafety: smoke over the stove.\nCONFIDENCE: 0.8"
            }
            (true, false) => "A cup on a table.\nNo safety concerns.\nCONFIDENCE: 0.8",
            (false, _) => "A room.\nNo safety concerns.\nCONFIDENCE: 0.3",
        })
    });
    let d = compare_setup(&server.url());
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(d.path().join("config.toml"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["eval", "--compare", "gemma4:e2b", "gemma-edge-ft", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["comparison"];
    assert!(c["interval"]["lo"].as_f64().unwrap() > 0.0, "{c}");
    assert!(
        c["verdict"]
            .as_str()
            .unwrap()
            .starts_with("gemma-edge-ft is better"),
        "{c}"
    );
    assert_eq!(c["cases"], 16);
    assert!(c["b_train"].as_f64().unwrap() > c["a_train"].as_f64().unwrap());
    // Both were asked, each under its own name.
    let asked: Vec<String> = server
        .chat_requests()
        .iter()
        .map(|r| r.model.clone())
        .collect();
    assert_eq!(asked.iter().filter(|m| *m == "gemma-edge-ft").count(), 16);
    assert_eq!(asked.iter().filter(|m| *m == "gemma4:e2b").count(), 16);

    // Equally good models (each right where the other is wrong): the interval includes zero.
    let (code, out, err) = run(&["eval", "--compare", "gemma4:e2b", "gemma-edge-copy"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no clear difference"), "{out}");
    assert!(out.contains("includes zero"), "{out}");

    // One other model alone, and one that is not served.
    let (code, out, err) = run(&["eval", "--student-model", "gemma-edge-ft"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("student gemma-edge-ft"), "{out}");
    let (code, _, err) = run(&["eval", "--student-model", "nope"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("does not serve nope") && err.contains("ollama create"),
        "{err}"
    );
}
