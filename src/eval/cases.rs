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
use std::collections::HashMap;
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

/// 1-based line and column (in characters) of a byte offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// `file:line:col` for a span, or just `file` without one.
fn locate(file: &Path, src: &str, span: Option<Range<usize>>) -> String {
    match span {
        Some(s) => {
            let (l, c) = line_col(src, s.start);
            format!("{}:{l}:{c}", file.display())
        }
        None => file.display().to_string(),
    }
}

/// A case as named in messages: `case "id"`, or `case #n` (1-based in its file) without an id.
fn case_label(table: Option<&DeTable<'_>>, index: usize) -> String {
    let id = table
        .and_then(|t| t.get("id"))
        .and_then(|v| v.get_ref().as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty());
    match id {
        Some(id) => format!("case {id:?}"),
        None => format!("case #{}", index + 1),
    }
}

/// Where the first case with an id was seen (`file:line:col`).
struct Seen {
    at: String,
}

/// Loads every `*.toml` directly in `dir` (sorted by file name), validating all cases.
pub fn load_eval_set(dir: &Path) -> Result<EvalSet, EvalError> {
    let no_cases = |why: &str| {
        EvalError(format!(
            "no eval cases in {}/{why}: add [[case]] entries to {}",
            dir.display(),
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
    let mut cases: Vec<Case> = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut seen_ids: HashMap<String, Seen> = HashMap::new();
    let mut images_hashed: Vec<String> = Vec::new();
    let mut image_bytes: Vec<(String, Vec<u8>)> = Vec::new();

    for name in &names {
        let file = dir.join(name);
        let src = match std::fs::read_to_string(&file) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{}: cannot read: {e}", file.display()));
                continue;
            }
        };
        hasher.write_entry(name, src.as_bytes());
        files.push(file.clone());
        load_file(
            dir,
            &file,
            &src,
            &mut cases,
            &mut problems,
            &mut seen_ids,
            &mut images_hashed,
            &mut image_bytes,
        );
    }

    if !problems.is_empty() {
        return Err(EvalError(problems.join("\n")));
    }
    if cases.is_empty() {
        return Err(no_cases(""));
    }
    for (rel, bytes) in &image_bytes {
        hasher.write_entry(rel, bytes);
    }
    Ok(EvalSet {
        cases,
        files,
        hash: hasher.hex(),
    })
}

/// Parses and validates one file, appending its cases and problems.
#[allow(clippy::too_many_arguments)]
fn load_file(
    dir: &Path,
    file: &Path,
    src: &str,
    cases: &mut Vec<Case>,
    problems: &mut Vec<String>,
    seen_ids: &mut HashMap<String, Seen>,
    images_hashed: &mut Vec<String>,
    image_bytes: &mut Vec<(String, Vec<u8>)>,
) {
    let doc = match DeTable::parse(src) {
        Ok(d) => d,
        Err(e) => {
            problems.push(format!(
                "{}: {}",
                locate(file, src, e.span()),
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
                locate(file, src, Some(key.span())),
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
                locate(file, src, Some(case_span)),
                other.type_str()
            ));
            return;
        }
    };

    for (index, item) in items.into_iter().enumerate() {
        let span = item.span();
        let at = locate(file, src, Some(span.clone()));
        let label = case_label(item.get_ref().as_table(), index);
        let Some(table) = item.get_ref().as_table() else {
            problems.push(format!(
                "{at}: {label}: must be a table, found {}",
                item.get_ref().type_str()
            ));
            continue;
        };
        // Report every unknown key with its own position (serde would stop at the first).
        let mut unknown = false;
        for (key, _) in table.iter() {
            let k: &str = key.get_ref().as_ref();
            if !CASE_FIELDS.contains(&k) {
                unknown = true;
                problems.push(format!(
                    "{}: {label}: unknown field `{k}`, expected one of {}",
                    locate(file, src, Some(key.span())),
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
                let where_ = locate(file, src, e.span().or(Some(span.clone())));
                problems.push(format!("{where_}: {label}: {}", e.message().trim_end()));
                continue;
            }
        };
        if let Some(case) = validate_case(dir, file, &at, &label, raw, problems, seen_ids) {
            if let CaseInput::Image(path) = &case.input {
                if let Some(rel) = path.strip_prefix(dir).ok().and_then(|p| p.to_str()) {
                    let rel = rel.to_string();
                    if !images_hashed.contains(&rel) {
                        match std::fs::read(path) {
                            Ok(bytes) => {
                                images_hashed.push(rel.clone());
                                image_bytes.push((rel, bytes));
                            }
                            Err(e) => problems.push(format!(
                                "{}: {label}: cannot read image {}: {e}",
                                file.display(),
                                path.display()
                            )),
                        }
                    }
                }
            }
            cases.push(case);
        }
    }
}

/// Checks one deserialized case; pushes its problems and returns it only when it is sound.
fn validate_case(
    dir: &Path,
    file: &Path,
    at: &str,
    label: &str,
    raw: RawCase,
    problems: &mut Vec<String>,
    seen_ids: &mut HashMap<String, Seen>,
) -> Option<Case> {
    let before = problems.len();
    let fname = file.display();
    let id = raw.id.as_deref().map(str::trim).unwrap_or("").to_string();
    match &raw.id {
        None => problems.push(format!("{at}: {label}: missing id")),
        Some(_) if id.is_empty() => problems.push(format!("{at}: {label}: empty id")),
        Some(_) => {
            if let Some(first) = seen_ids.get(&id) {
                problems.push(format!(
                    "{at}: {label}: duplicate id, first defined at {}",
                    first.at
                ));
            } else {
                seen_ids.insert(
                    id.clone(),
                    Seen { at: at.to_string() },
                );
            }
        }
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
        (None, Some(rel)) => check_image(dir, rel).map_or_else(
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

/// Resolves an image path against the eval dir and checks its header decodes.
/// Returns the reason (completing "image <rel> ...") on failure.
fn check_image(dir: &Path, rel: &str) -> Result<PathBuf, String> {
    if rel.trim().is_empty() {
        return Err("is an empty path".into());
    }
    let relp = Path::new(rel);
    if relp.is_absolute() {
        return Err("must be relative to the eval dir".into());
    }
    let path = dir.join(relp);
    if !path.is_file() {
        return Err("not found".into());
    }
    let dims = image::ImageReader::open(&path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("cannot be read: {e}"))?
        .into_dimensions();
    match dims {
        Ok(_) => Ok(path),
        Err(e) => Err(format!("is not a readable image: {e}")),
    }
}
