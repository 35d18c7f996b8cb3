//! Tests of loading the set: the shipped set, file order, the hash, positions in errors.

use super::*;

#[test]
fn shipped_eval_set_loads_with_both_splits_and_kinds() {
    let set = load_eval_set(&shipped_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(set.cases.len() >= 16, "only {} cases", set.cases.len());
    let (train, holdout) = set.counts();
    assert_eq!(train + holdout, set.cases.len());
    assert!(train > 0 && holdout > 0);
    assert!(train > holdout, "train should be the larger split");
    for split in [Split::Train, Split::Holdout] {
        let cases: Vec<&Case> = set.split(split).collect();
        let has = |f: &dyn Fn(&Case) -> bool| cases.iter().any(|c| f(c));
        assert!(
            has(&|c| matches!(c.input, CaseInput::Text(_))),
            "{split:?}: text"
        );
        assert!(
            has(&|c| matches!(c.input, CaseInput::Image(_))),
            "{split:?}: image"
        );
        assert!(has(&|c| c.expectation.safety), "{split:?}: safety true");
        assert!(has(&|c| !c.expectation.safety), "{split:?}: safety false");
    }
    for c in &set.cases {
        if let CaseInput::Image(p) = &c.input {
            assert!(p.is_file(), "{}", p.display());
        }
        assert!(!c.expectation.expect.is_empty(), "{} expects nothing", c.id);
    }
    let seed = set.cases.iter().find(|c| c.id == "lighter-flame").unwrap();
    assert_eq!(
        seed.expectation.expect,
        vec![
            vec!["person".to_string()],
            vec!["flame".into(), "fire".into(), "lighter".into()]
        ]
    );
    assert!(seed.expectation.safety);
    assert_eq!(set.files, vec![shipped_dir().join("cases.toml")]);
    assert_eq!(set.hash.len(), 16);
    assert!(set.hash.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(load_eval_set(&shipped_dir()).unwrap().hash, set.hash);
}

#[test]
fn shipped_skill_asks_for_confidence_line() {
    let skill =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("skills/skill.txt")).unwrap();
    // The skill is the instructions; the student gets them with the output contract.
    let prompt = crate::roles::output_contract::compose(&skill);
    assert!(prompt.contains("CONFIDENCE:"));
    assert!(prompt.contains("No safety concerns."));
    // No template for the model to echo back (`Confidence: <0.8>`).
    assert!(!prompt.contains("CONFIDENCE: <"), "{prompt}");
}

#[test]
fn synonyms_and_defaults_parse() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"a\"\ntext = \"A dog on a rug.\"\nexpect = [\"dog\", [\"rug\", \"carpet\"]]\nsafety = false\n\n\
         [[case]]\nid = \"b\"\ntext = \"Smoke.\"\nprompt = \"Look closely.\"\nexpect = [\"smoke\"]\nforbid = [\"cat\"]\nsafety = true\nweight = 2\nsplit = \"holdout\"\n",
    );
    let set = load_eval_set(d.path()).unwrap();
    let a = &set.cases[0];
    assert_eq!(a.id, "a");
    assert_eq!(a.input, CaseInput::Text("A dog on a rug.".into()));
    assert_eq!(
        a.expectation.expect,
        vec![vec!["dog".to_string()], vec!["rug".into(), "carpet".into()]]
    );
    assert!(a.expectation.forbid.is_empty());
    assert!(!a.expectation.safety);
    assert_eq!(a.weight, 1.0);
    assert_eq!(a.split, Split::Train);
    assert_eq!(a.prompt, None);
    assert_eq!(a.file, d.path().join("cases.toml"));
    let b = &set.cases[1];
    assert_eq!(b.prompt.as_deref(), Some("Look closely."));
    assert_eq!(b.expectation.forbid, vec!["cat".to_string()]);
    assert!(b.expectation.safety);
    assert_eq!(b.weight, 2.0);
    assert_eq!(b.split, Split::Holdout);
    assert_eq!(set.counts(), (1, 1));
    assert_eq!(
        set.split(Split::Holdout)
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["b"]
    );
}

#[test]
fn files_sorted_by_name_empty_files_allowed_other_files_ignored() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "b.toml", &GOOD.replace("\"ok\"", "\"from-b\""));
    write(d.path(), "a.toml", &GOOD.replace("\"ok\"", "\"from-a\""));
    write(d.path(), "0-empty.toml", "# nothing here yet\n");
    write(d.path(), "notes.txt", "[[case]]\nbroken");
    let set = load_eval_set(d.path()).unwrap();
    let ids: Vec<&str> = set.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["from-a", "from-b"]);
    assert_eq!(set.files.len(), 3);
    assert_eq!(set.files[0], d.path().join("0-empty.toml"));
}

#[test]
fn hash_covers_toml_and_images() {
    let d = tempfile::tempdir().unwrap();
    tiny_png(d.path(), "images/x.png");
    let toml =
        "[[case]]\nid = \"img\"\nimage = \"images/x.png\"\nexpect = [\"square\"]\nsafety = false\n";
    write(d.path(), "cases.toml", toml);
    let h1 = load_eval_set(d.path()).unwrap().hash;
    assert_eq!(load_eval_set(d.path()).unwrap().hash, h1);
    image::RgbImage::new(3, 2)
        .save(d.path().join("images/x.png"))
        .unwrap();
    let h2 = load_eval_set(d.path()).unwrap().hash;
    assert_ne!(h1, h2, "image change must change the hash");
    write(d.path(), "cases.toml", &format!("{toml}# comment\n"));
    assert_ne!(
        load_eval_set(d.path()).unwrap().hash,
        h2,
        "toml change must change the hash"
    );
}

#[test]
fn missing_dir_and_no_cases_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope");
    let e = load_err(&missing);
    assert!(e.contains("no eval cases in"), "{e}");
    assert!(e.contains("does not exist"), "{e}");
    let e = load_err(d.path());
    let shown = d.path().display();
    assert_eq!(
        e,
        format!("no eval cases in {shown}/: add [[case]] entries to {shown}/cases.toml")
    );
    write(d.path(), "cases.toml", "# just a comment\n");
    let e = load_err(d.path());
    assert!(e.contains("no eval cases in"), "{e}");
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.toml", GOOD);
    write(
        d.path(),
        "broken.toml",
        "[[case]]\nid = \"x\"\ntext = \"unterminated\nsafety = true\n",
    );
    let e = load_err(d.path());
    let file = d.path().join("broken.toml").display().to_string();
    assert!(e.starts_with(&format!("{file}:3:")), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn unknown_field_names_line_column_and_case() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "cases.toml",
        &format!("{GOOD}\n[[case]]\nid = \"bad\"\ntext = \"x\"\nsafety = true\ncolour = \"red\"\n  shape = 1\n"),
    );
    let e = load_err(d.path());
    let file = d.path().join("cases.toml").display().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "both unknown keys reported: {e}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:11:1: case \"bad\": unknown field `colour`"
        )),
        "{e}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:12:3: case \"bad\": unknown field `shape`")),
        "{e}"
    );
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "cases.toml", &format!("title = \"x\"\n{GOOD}"));
    let e = load_err(d.path());
    assert!(
        e.contains("cases.toml:1:1: unknown top-level key `title`"),
        "{e}"
    );
}

#[test]
fn type_errors_name_line_and_case() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "cases.toml",
        "[[case]]\nid = \"heavy\"\ntext = \"x\"\nsafety = true\nweight = \"lots\"\n\n\
         [[case]]\nid = \"nosafety\"\ntext = \"x\"\n\n\
         [[case]]\nid = \"badsplit\"\ntext = \"x\"\nsafety = false\nsplit = \"test\"\n\n\
         [[case]]\nid = \"numbers\"\ntext = \"x\"\nsafety = false\nexpect = [3]\n",
    );
    let e = load_err(d.path());
    let file = d.path().join("cases.toml").display().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 4, "{e}");
    assert!(lines[3].starts_with(&format!("{file}:21:")), "{e}");
    assert!(
        lines[3].ends_with(
            "case \"numbers\": each expect entry must be a word or a list of synonym words"
        ),
        "{e}"
    );
    assert!(
        lines[0].starts_with(&format!("{file}:5:")) && lines[0].contains("case \"heavy\""),
        "{e}"
    );
    assert!(
        lines[1].contains("case \"nosafety\"") && lines[1].contains("safety"),
        "{e}"
    );
    assert!(
        lines[2].starts_with(&format!("{file}:15:")) && lines[2].contains("case \"badsplit\""),
        "{e}"
    );
}

#[test]
fn duplicate_id_names_both_files() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.toml", GOOD);
    write(d.path(), "b.toml", &format!("# second\n{GOOD}"));
    let e = load_err(d.path());
    let a = d.path().join("a.toml").display().to_string();
    let b = d.path().join("b.toml").display().to_string();
    assert_eq!(
        e,
        format!("{b}:2:1: case \"ok\": duplicate id, first defined at {a}:1:1")
    );
    // Also when the first definition is itself broken.
    write(d.path(), "a.toml", "[[case]]\nid = \"ok\"\nsafety = true\n");
    let e = load_err(d.path());
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 2, "{e}");
    assert!(lines[0].contains("has neither text nor image"), "{e}");
    assert!(lines[1].contains("duplicate id, first defined at"), "{e}");
}

#[test]
fn all_problems_across_files_reported_and_nothing_loaded() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.toml", "[[case]]\nid = \"a\"\nsafety = true\n");
    write(d.path(), "b.toml", "[[case\n");
    write(
        d.path(),
        "c.toml",
        &format!("{GOOD}\n[[case]]\nid = \"c\"\ntext = \"x\"\nsafety = true\nweight = 0\n"),
    );
    let e = load_err(d.path());
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(
        lines[0].contains("a.toml") && lines[0].contains("case \"a\""),
        "{e}"
    );
    assert!(lines[1].contains("b.toml:1:"), "{e}");
    assert!(
        lines[2].contains("c.toml") && lines[2].contains("case \"c\""),
        "{e}"
    );
    assert_eq!(EvalError(e.clone()).problems().len(), 3);
}

#[test]
fn case_must_be_array_of_tables() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "cases.toml", "case = 3\n");
    let e = load_err(d.path());
    assert!(
        e.contains("cases.toml:1:8: `case` must be an array of tables"),
        "{e}"
    );
}
