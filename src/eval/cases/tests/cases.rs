//! Tests of checking one case: text xor image, ids, expect/forbid words, weights.

use super::*;

#[test]
fn missing_and_empty_id_named_by_position() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "cases.toml",
        &format!("{GOOD}\n[[case]]\ntext = \"x\"\nsafety = true\n\n[[case]]\nid = \"  \"\ntext = \"x\"\nsafety = true\n"),
    );
    let e = load_err(d.path());
    let file = d.path().join("cases.toml").display().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(lines[0].starts_with(&format!("{file}:")), "{e}");
    assert!(lines[0].ends_with("case #2: missing id"), "{e}");
    assert!(lines[1].ends_with("case #3: empty id"), "{e}");
}

#[test]
fn text_xor_image() {
    let d = tempfile::tempdir().unwrap();
    tiny_png(d.path(), "images/x.png");
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"neither\"\nsafety = true\n\n\
         [[case]]\nid = \"both\"\ntext = \"x\"\nimage = \"images/x.png\"\nsafety = true\n\n\
         [[case]]\nid = \"blank\"\ntext = \"   \"\nsafety = true\n",
    );
    let e = load_err(d.path());
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].contains("case \"neither\": has neither text nor image"),
        "{e}"
    );
    assert!(
        lines[1].contains("case \"both\": has both text and image"),
        "{e}"
    );
    assert!(lines[2].contains("case \"blank\": text is empty"), "{e}");
}

#[test]
fn empty_synonym_list_and_empty_words() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"nolist\"\ntext = \"x\"\nexpect = [\"a\", []]\nsafety = false\n\n\
         [[case]]\nid = \"noword\"\ntext = \"x\"\nexpect = [[\"a\", \"\"]]\nsafety = false\n\n\
         [[case]]\nid = \"blankword\"\ntext = \"x\"\nexpect = [\" \"]\nsafety = false\n\n\
         [[case]]\nid = \"blankforbid\"\ntext = \"x\"\nforbid = [\"\"]\nsafety = false\n",
    );
    let e = load_err(d.path());
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(
        lines[0].contains("case \"nolist\": expect entry 2 is an empty synonym list"),
        "{e}"
    );
    assert!(
        lines[1].contains("case \"noword\": expect entry 1 has an empty word"),
        "{e}"
    );
    assert!(
        lines[2].contains("case \"blankword\": expect entry 1 has an empty word"),
        "{e}"
    );
    assert!(
        lines[3].contains("case \"blankforbid\": forbid has an empty word"),
        "{e}"
    );
}

#[test]
fn weight_must_be_finite_and_positive() {
    let d = tempfile::tempdir().unwrap();
    let mut src = String::new();
    for (id, w) in [
        ("zero", "0"),
        ("neg", "-1.5"),
        ("nan", "nan"),
        ("inf", "inf"),
    ] {
        src.push_str(&format!(
            "[[case]]\nid = \"{id}\"\ntext = \"x\"\nsafety = false\nweight = {w}\n\n"
        ));
    }
    src.push_str(&GOOD.replace("safety", "weight = 0.25\nsafety"));
    write(d.path(), "cases.toml", &src);
    let e = load_err(d.path());
    let file = d.path().join("cases.toml").display().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    for (line, id) in lines.iter().zip(["zero", "neg", "nan", "inf"]) {
        assert!(line.starts_with(&format!("{file}:")), "{e}");
        assert!(
            line.contains(&format!(
                "case \"{id}\": weight must be a finite number > 0"
            )),
            "{e}"
        );
    }
}

#[test]
fn a_case_names_the_right_answer_of_each_watch_and_is_asked_every_watch() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"door\"\ntext = \"A garage, its door up.\"\nexpect = [\"garage\"]\n\
         safety = false\nwatch = { garage_door = true }\n\n\
         [[case]]\nid = \"bad\"\ntext = \"x\"\nsafety = false\nwatch = { \"Garage Door\" = true }\n",
    );
    let e = load_err(d.path());
    assert!(
        e.contains("case \"bad\": watch \"Garage Door\" is not a watch id"),
        "{e}"
    );
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"door\"\ntext = \"A garage, its door up.\"\nexpect = [\"garage\"]\n\
         safety = false\nwatch = { garage_door = true }\n\n[[case]]\nid = \"mug\"\ntext = \"A mug.\"\nsafety = false\n",
    );
    let set = load_eval_set(d.path()).unwrap();
    assert!(set.cases[0].expectation.watch["garage_door"]);
    // Against watches that do not include it: an error naming the case and the watch.
    let stove = [crate::watch::WatchSpec::new("stove_on", "Is the stove on?")];
    let e = set.clone().watching(&stove).unwrap_err().0;
    assert!(
        e.contains("case \"door\" expects watch garage_door but no such watch is configured"),
        "{e}"
    );
    // With it: every case is asked every watch, as a live frame is.
    let door = crate::watch::WatchSpec::new("garage_door", "Is the garage door open?");
    let set = set.watching(&[door, stove[0].clone()]).unwrap();
    let images = crate::eval::runner::PreparedImages::default();
    for c in &set.cases {
        let req = crate::eval::runner::case_request("Describe.", c, &images);
        let system = req.system.unwrap();
        assert!(
            system.contains("- garage_door: \"Is the garage door open?\""),
            "{system}"
        );
        assert!(system.contains("- stove_on: "), "{system}");
    }
}
