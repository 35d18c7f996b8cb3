//! Loading the eval set (`eval/*.toml`), all or nothing, with errors naming file and case.
//!
//! Every `*.toml` file directly in the eval dir is read, sorted by file name. Each file holds
//! zero or more `[[case]]` tables:
//!
//! ```toml
//! [[case]]
//! id = "lighter-flame"          # unique across all files
//! text = "A person is holding a lighter with a visible flame."   # text XOR image
//! # image = "images/coffee.png" # relative to the eval dir
//! # prompt = "..."              # optional override of the task prompt
//! expect = ["person", ["flame", "fire"]]   # a word, or a list of synonyms (any one counts)
//! forbid = []                   # words the answer must not mention
//! safety = true                 # should the answer flag safety-relevant activity
//! weight = 1.0                  # optional, > 0, default 1
//! split = "train"               # "train" | "holdout", default train
//! ```
//!
//! Loading validates everything and reports every problem it finds (one per line) instead of
//! stopping at the first; nothing is returned from a half-read set.

use super::Expectation;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Holdout,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseInput {
    /// A scene described in words.
    Text(String),
    /// An image; the path is resolved (eval dir joined with the file's relative path).
    Image(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub id: String,
    pub input: CaseInput,
    /// Overrides the task prompt for this case.
    pub prompt: Option<String>,
    pub expectation: Expectation,
    pub weight: f64,
    pub split: Split,
    /// The file the case came from.
    pub file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct EvalSet {
    pub cases: Vec<Case>,
    pub files: Vec<PathBuf>,
    /// Hash of the files' contents (hex), for sidecars.
    pub hash: String,
}

impl EvalSet {
    /// The cases of one split, in load order.
    pub fn split(&self, split: Split) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(move |c| c.split == split)
    }

    /// `(train, holdout)` case counts.
    pub fn counts(&self) -> (usize, usize) {
        let train = self.split(Split::Train).count();
        (train, self.cases.len() - train)
    }
}

/// Everything wrong with an eval set, one problem per line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl EvalError {
    /// The individual problems (the message's lines).
    pub fn problems(&self) -> Vec<&str> {
        self.0.lines().collect()
    }
}

/// The keys a `[[case]]` table may have.
const CASE_FIELDS: &[&str] = &[
    "id", "text", "image", "prompt", "expect", "forbid", "safety", "weight", "split",
];

/// One `[[case]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: Option<String>,
    text: Option<String>,
    image: Option<String>,
    prompt: Option<String>,
    #[serde(default)]
    expect: Vec<ExpectEntry>,
    #[serde(default)]
    forbid: Vec<String>,
    safety: bool,
    weight: Option<f64>,
    split: Option<Split>,
}

/// One `expect` entry: a word, or a list of synonyms of which any one counts.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum ExpectEntry {
    Word(String),
    Synonyms(Vec<String>),
}

/// FNV-1a, 64 bit.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    /// A name and its contents, length-prefixed so that boundaries cannot shift.
    fn write_entry(&mut self, name: &str, contents: &[u8]) {
        self.write(&(name.len() as u64).to_le_bytes());
        self.write(name.as_bytes());
        self.write(&(contents.len() as u64).to_le_bytes());
        self.write(contents);
    }
    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// A file's text with where each of its lines starts, found once: locating a span is then
/// a binary search, not a rescan from the top (which made loading quadratic in cases).
struct Text<'a> {
    src: &'a str,
    /// Byte offset of the start of each line (the first is 0).
    line_starts: Vec<usize>,
}

impl<'a> Text<'a> {
    fn new(src: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Text { src, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.src.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line starting at or before `offset`.
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let col = self.src[start..offset].chars().count() + 1;
        (line, col)
    }
}

/// `file:line:col` for a span, or just `file` without one. The path is escaped: it is
/// echoed to the terminal.
fn locate(file: &Path, text: &Text<'_>, span: Option<Range<usize>>) -> String {
    let shown = crate::sanitize::escape_line(&file.display().to_string());
    match span {
        Some(s) => {
            let (l, c) = text.line_col(s.start);
            format!("{shown}:{l}:{c}")
        }
        None => shown,
    }
}

/// The trimmed, non-empty string `id` of a case table, if it has one.
fn table_id<'t>(table: &'t DeTable<'_>) -> Option<&'t str> {
    table
        .get("id")
        .and_then(|v| v.get_ref().as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A case as named in messages: `case "id"`, or `case #n` (1-based in its file) without an id.
fn case_label(table: Option<&DeTable<'_>>, index: usize) -> String {
    match table.and_then(table_id) {
        Some(id) => format!("case {id:?}"),
        None => format!("case #{}", index + 1),
    }
}

/// What has been read so far while loading a set.
struct Loader<'a> {
    dir: &'a Path,
    cases: Vec<Case>,
    problems: Vec<String>,
    /// Case id -> where it was first defined (`file:line:col`).
    seen_ids: HashMap<String, String>,
    /// Referenced images (path relative to the eval dir, bytes), first reference order, no repeats.
    images: Vec<(String, Vec<u8>)>,
    /// The relative paths in `images`, to find repeats without a scan.
    image_seen: HashSet<String>,
    /// The eval dir resolved (symlinks followed): every image must resolve under it.
    real_dir: PathBuf,
}

/// Loads every `*.toml` directly in `dir` (sorted by file name), validating all cases.
pub fn load_eval_set(dir: &Path) -> Result<EvalSet, EvalError> {
    let no_cases = |why: &str| {
        let shown = dir.display().to_string();
        EvalError(format!(
            "no eval cases in {}/{why}: add [[case]] entries to {}",
            shown.trim_end_matches('/'),
            dir.join("cases.toml").display()
        ))
    };
    if !dir.is_dir() {
        return Err(no_cases(" (the directory does not exist)"));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| EvalError(format!("cannot read eval dir {}: {e}", dir.display())))?;
    let mut names: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("cannot read eval dir {}: {e}", dir.display()));
                continue;
            }
        };
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
            match entry.file_name().into_string() {
                Ok(n) => names.push(n),
                Err(n) => problems.push(format!(
                    "{}: file name is not valid UTF-8",
                    dir.join(n).display()
                )),
            }
        }
    }
    names.sort();

    let mut hasher = Fnv1a::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut loader = Loader {
        dir,
        cases: Vec::new(),
        problems,
        seen_ids: HashMap::new(),
        images: Vec::new(),
        image_seen: HashSet::new(),
        real_dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
    };

    for name in &names {
        let file = dir.join(name);
        let src = match crate::bounded_read::read_regular_string(
            &file,
            crate::bounded_read::MAX_EVAL_FILE_BYTES,
        ) {
            Ok(s) => s,
            Err(e) => {
                loader
                    .problems
                    .push(format!("{}: cannot read: {e}", file.display()));
                continue;
            }
        };
        hasher.write_entry(name, src.as_bytes());
        files.push(file.clone());
        loader.load_file(&file, &src);
    }

    if !loader.problems.is_empty() {
        return Err(EvalError(loader.problems.join("\n")));
    }
    if loader.cases.is_empty() {
        return Err(no_cases(""));
    }
    for (rel, bytes) in &loader.images {
        hasher.write_entry(rel, bytes);
    }
    Ok(EvalSet {
        cases: loader.cases,
        files,
        hash: hasher.hex(),
    })
}

impl Loader<'_> {
    /// Parses and validates one file, appending its cases and problems.
    fn load_file(&mut self, file: &Path, src: &str) {
        let text = Text::new(src);
        let dir = self.dir;
        let real_dir = self.real_dir.as_path();
        let problems = &mut self.problems;
        let doc = match DeTable::parse(src) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!(
                    "{}: {}",
                    locate(file, &text, e.span()),
                    e.message().trim_end()
                ));
                return;
            }
        };
        let mut top = doc.into_inner();
        for (key, _) in top.iter() {
            if key.get_ref().as_ref() != "case" {
                problems.push(format!(
                    "{}: unknown top-level key `{}` (only [[case]] tables are allowed)",
                    locate(file, &text, Some(key.span())),
                    key.get_ref()
                ));
            }
        }
        let Some(case_value) = top.remove("case") else {
            return; // A file without cases is allowed.
        };
        let case_span = case_value.span();
        let items: Vec<Spanned<DeValue<'_>>> = match case_value.into_inner() {
            DeValue::Array(a) => a.iter().cloned().collect(),
            other => {
                problems.push(format!(
                    "{}: `case` must be an array of tables ([[case]]), found {}",
                    locate(file, &text, Some(case_span)),
                    other.type_str()
                ));
                return;
            }
        };

        for (index, item) in items.into_iter().enumerate() {
            let span = item.span();
            let at = locate(file, &text, Some(span.clone()));
            let label = case_label(item.get_ref().as_table(), index);
            let Some(table) = item.get_ref().as_table() else {
                problems.push(format!(
                    "{at}: {label}: must be a table, found {}",
                    item.get_ref().type_str()
                ));
                continue;
            };
            // Ids are checked for duplicates first, so that a duplicate is reported even when
            // the case has other problems.
            let mut duplicate = false;
            if let Some(id) = table_id(table) {
                if let Some(first) = self.seen_ids.get(id) {
                    duplicate = true;
                    problems.push(format!(
                        "{at}: {label}: duplicate id, first defined at {first}"
                    ));
                } else {
                    self.seen_ids.insert(id.to_string(), at.clone());
                }
            }
            // Report every unknown key with its own position (serde would stop at the first).
            let mut unknown = false;
            for (key, _) in table.iter() {
                let k: &str = key.get_ref().as_ref();
                if !CASE_FIELDS.contains(&k) {
                    unknown = true;
                    problems.push(format!(
                        "{}: {label}: unknown field `{k}`, expected one of {}",
                        locate(file, &text, Some(key.span())),
                        CASE_FIELDS
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            if unknown {
                continue;
            }
            let raw = match RawCase::deserialize(ValueDeserializer::from(item.clone())) {
                Ok(r) => r,
                Err(e) => {
                    let where_ = locate(file, &text, e.span().or(Some(span.clone())));
                    let msg = e.message().trim_end();
                    let msg = if msg.contains("untagged enum ExpectEntry") {
                        "each expect entry must be a word or a list of synonym words"
                    } else {
                        msg
                    };
                    problems.push(format!("{where_}: {label}: {msg}"));
                    continue;
                }
            };
            if duplicate {
                continue;
            }
            let Some(case) = validate_case((dir, real_dir), file, &at, &label, raw, problems)
            else {
                continue;
            };
            if let CaseInput::Image(path) = &case.input {
                let rel = path.strip_prefix(dir).unwrap_or(path).display().to_string();
                if !self.image_seen.contains(&rel) {
                    match crate::bounded_read::read_regular(
                        path,
                        crate::bounded_read::MAX_IMAGE_FILE_BYTES,
                    ) {
                        Ok(bytes) => {
                            self.image_seen.insert(rel.clone());
                            self.images.push((rel, bytes));
                        }
                        Err(e) => problems.push(format!(
                            "{}: {label}: cannot read image {rel}: {e}",
                            file.display()
                        )),
                    }
                }
            }
            self.cases.push(case);
        }
    }
}

/// Checks one deserialized case; pushes its problems and returns it only when it is sound.
fn validate_case(
    dirs: (&Path, &Path),
    file: &Path,
    at: &str,
    label: &str,
    raw: RawCase,
    problems: &mut Vec<String>,
) -> Option<Case> {
    let before = problems.len();
    let fname = file.display();
    let id = raw.id.as_deref().map(str::trim).unwrap_or("").to_string();
    match &raw.id {
        None => problems.push(format!("{at}: {label}: missing id")),
        Some(_) if id.is_empty() => problems.push(format!("{at}: {label}: empty id")),
        Some(_) => {}
    }

    let input = match (&raw.text, &raw.image) {
        (Some(_), Some(_)) => {
            problems.push(format!(
                "{at}: {label}: has both text and image (give exactly one)"
            ));
            None
        }
        (None, None) => {
            problems.push(format!(
                "{at}: {label}: has neither text nor image (give exactly one)"
            ));
            None
        }
        (Some(t), None) => {
            if t.trim().is_empty() {
                problems.push(format!("{at}: {label}: text is empty"));
                None
            } else {
                Some(CaseInput::Text(t.trim().to_string()))
            }
        }
        (None, Some(rel)) => check_image(dirs.0, dirs.1, rel).map_or_else(
            |why| {
                problems.push(format!("{fname}: {label}: image {rel} {why}"));
                None
            },
            |p| Some(CaseInput::Image(p)),
        ),
    };

    if raw.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
        problems.push(format!("{at}: {label}: prompt is empty (omit it instead)"));
    }

    let mut expect: Vec<Vec<String>> = Vec::new();
    for (i, entry) in raw.expect.into_iter().enumerate() {
        let group = match entry {
            ExpectEntry::Word(w) => vec![w],
            ExpectEntry::Synonyms(s) => s,
        };
        if group.is_empty() {
            problems.push(format!(
                "{at}: {label}: expect entry {} is an empty synonym list",
                i + 1
            ));
            continue;
        }
        if group.iter().any(|w| w.trim().is_empty()) {
            problems.push(format!(
                "{at}: {label}: expect entry {} has an empty word",
                i + 1
            ));
            continue;
        }
        expect.push(group.into_iter().map(|w| w.trim().to_string()).collect());
    }
    let mut forbid: Vec<String> = Vec::new();
    for w in raw.forbid {
        if w.trim().is_empty() {
            problems.push(format!("{at}: {label}: forbid has an empty word"));
        } else {
            forbid.push(w.trim().to_string());
        }
    }

    let weight = raw.weight.unwrap_or(1.0);
    if !(weight.is_finite() && weight > 0.0) {
        problems.push(format!(
            "{at}: {label}: weight must be a finite number > 0, got {weight}"
        ));
    }

    if problems.len() != before {
        return None;
    }
    Some(Case {
        id,
        input: input?,
        prompt: raw.prompt.map(|p| p.trim().to_string()),
        expectation: Expectation {
            expect,
            forbid,
            safety: raw.safety,
        },
        weight,
        split: raw.split.unwrap_or(Split::Train),
        file: file.to_path_buf(),
    })
}

/// Resolves an image path against the eval dir (`real_dir`: the same, symlinks followed)
/// and checks its header decodes to a size we agree to decode. The path must stay inside
/// the eval dir: no `..`, and no symlink leading out. Only a regular file is opened, without
/// blocking. Returns the reason (completing "image <rel> ...") on failure.
fn check_image(dir: &Path, real_dir: &Path, rel: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    if rel.trim().is_empty() {
        return Err("is an empty path".into());
    }
    let relp = Path::new(rel);
    if relp.is_absolute() {
        return Err("must be relative to the eval dir".into());
    }
    if relp.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("must not contain `..`: images live under the eval dir".into());
    }
    let path = dir.join(relp);
    let real = match path.canonicalize() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("not found".into()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    if !real.starts_with(real_dir) {
        return Err(format!(
            "leads outside the eval dir (a symlink to {}): copy the image into the eval dir",
            real.display()
        ));
    }
    let file =
        crate::bounded_read::open_regular(&path).map_err(|e| format!("cannot be read: {e}"))?;
    let (w, h) = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| format!("cannot be read: {e}"))?
        .into_dimensions()
        .map_err(|e| format!("is not a readable image: {e}"))?;
    crate::frame::prep::check_dimensions(w, h).map_err(|why| format!("is {why}"))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn shipped_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("eval")
    }

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, content).unwrap();
        p
    }

    fn tiny_png(dir: &Path, rel: &str) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        image::RgbImage::new(2, 2).save(&p).unwrap();
    }

    fn load_err(dir: &Path) -> String {
        match load_eval_set(dir) {
            Ok(set) => panic!("expected an error, loaded {} cases", set.cases.len()),
            Err(e) => e.0,
        }
    }

    const GOOD: &str =
        "[[case]]\nid = \"ok\"\ntext = \"A cat.\"\nexpect = [\"cat\"]\nsafety = false\n";

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
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("skills/skill.txt"))
                .unwrap();
        // The skill is the instructions; the student gets them with the output contract.
        let prompt = crate::output_contract::compose(&skill);
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
    fn image_case_resolves_against_eval_dir() {
        let d = tempfile::tempdir().unwrap();
        tiny_png(d.path(), "images/x.png");
        write(
            d.path(),
            "cases.toml",
            "[[case]]\nid = \"img\"\nimage = \"images/x.png\"\nexpect = [\"square\"]\nsafety = false\n",
        );
        let set = load_eval_set(d.path()).unwrap();
        assert_eq!(
            set.cases[0].input,
            CaseInput::Image(d.path().join("images/x.png"))
        );
    }

    #[test]
    fn hash_covers_toml_and_images() {
        let d = tempfile::tempdir().unwrap();
        tiny_png(d.path(), "images/x.png");
        let toml = "[[case]]\nid = \"img\"\nimage = \"images/x.png\"\nexpect = [\"square\"]\nsafety = false\n";
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
    fn fnv1a_matches_reference_values() {
        let mut h = Fnv1a::new();
        assert_eq!(h.hex(), "cbf29ce484222325");
        h.write(b"a");
        assert_eq!(h.hex(), "af63dc4c8601ec8c");
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.hex(), "85944171f73967e8");
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
    fn image_missing_or_undecodable() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "images/garbage.png", "this is not a png");
        write(
            d.path(),
            "cases.toml",
            "[[case]]\nid = \"coffee-cup\"\nimage = \"images/nope.png\"\nsafety = false\n\n\
             [[case]]\nid = \"garbage\"\nimage = \"images/garbage.png\"\nsafety = false\n",
        );
        let e = load_err(d.path());
        let file = d.path().join("cases.toml").display().to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 2, "{e}");
        assert_eq!(
            lines[0],
            format!("{file}: case \"coffee-cup\": image images/nope.png not found")
        );
        assert!(
            lines[1].starts_with(&format!(
                "{file}: case \"garbage\": image images/garbage.png is not a readable image"
            )),
            "{e}"
        );
    }

    #[test]
    fn images_must_stay_in_the_eval_dir() {
        let d = tempfile::tempdir().unwrap();
        let eval = d.path().join("eval");
        tiny_png(d.path(), "outside.png");
        tiny_png(&eval, "images/in.png");
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.path().join("outside.png"), eval.join("images/link.png"))
            .unwrap();
        // A link that stays inside is fine.
        #[cfg(unix)]
        std::os::unix::fs::symlink(eval.join("images/in.png"), eval.join("images/alias.png"))
            .unwrap();
        write(
            &eval,
            "cases.toml",
            "[[case]]\nid = \"up\"\nimage = \"../outside.png\"\nsafety = false\n\n\
             [[case]]\nid = \"up-inside\"\nimage = \"images/../images/in.png\"\nsafety = false\n\n\
             [[case]]\nid = \"link\"\nimage = \"images/link.png\"\nsafety = false\n\n\
             [[case]]\nid = \"alias\"\nimage = \"images/alias.png\"\nsafety = false\n",
        );
        let e = load_err(&eval);
        let lines: Vec<&str> = e.lines().collect();
        assert!(lines.len() == 3 || cfg!(not(unix)), "{e}");
        assert!(
            lines[0].contains("case \"up\": image ../outside.png must not contain `..`"),
            "{e}"
        );
        assert!(
            lines[1].contains("case \"up-inside\"") && lines[1].contains("`..`"),
            "{e}"
        );
        #[cfg(unix)]
        assert!(
            lines[2].contains("case \"link\": image images/link.png leads outside the eval dir"),
            "{e}"
        );
        assert!(!e.contains("\"alias\""), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn fifo_image_and_case_file_do_not_block() {
        let d = tempfile::tempdir().unwrap();
        let mkfifo = |p: &Path| {
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        };
        fs::create_dir_all(d.path().join("images")).unwrap();
        mkfifo(&d.path().join("images/fifo.png"));
        write(
            d.path(),
            "cases.toml",
            "[[case]]\nid = \"fifo\"\nimage = \"images/fifo.png\"\nsafety = false\n",
        );
        let started = std::time::Instant::now();
        let e = load_err(d.path());
        assert!(e.contains("not a regular file (a FIFO)"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_bomb_sized_image_is_refused_from_its_header() {
        let d = tempfile::tempdir().unwrap();
        // A PNG header claiming 13000x13000: refused before any decoding.
        let p = d.path().join("images/bomb.png");
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, png_header(13_000, 13_000)).unwrap();
        write(
            d.path(),
            "cases.toml",
            "[[case]]\nid = \"bomb\"\nimage = \"images/bomb.png\"\nsafety = false\n",
        );
        let e = load_err(d.path());
        assert!(
            e.contains("image images/bomb.png is too large: 13000x13000 is 169.0 MP"),
            "{e}"
        );
    }

    /// A PNG that only has a header (IHDR for an 8-bit RGB image, an empty IDAT, IEND):
    /// enough for its size to be read, nothing to decode.
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc32(&body).to_be_bytes());
        };
        let mut ihdr = w.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        chunk(b"IDAT", &[]);
        chunk(b"IEND", &[]);
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
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

    #[test]
    fn line_col_counts_characters() {
        let src = "ab\ncdé\nxyz";
        let t = Text::new(src);
        assert_eq!(t.line_col(0), (1, 1));
        assert_eq!(t.line_col(2), (1, 3));
        assert_eq!(t.line_col(3), (2, 1));
        assert_eq!(t.line_col(8), (3, 1));
        assert_eq!(t.line_col(9), (3, 2));
        assert_eq!(t.line_col(100), (3, 4));
        // Inside a multi-byte character: its start.
        assert_eq!(t.line_col(6), (2, 3));
        assert_eq!(Text::new("").line_col(0), (1, 1));
    }
}
