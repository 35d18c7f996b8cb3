//! Loading the eval set: every `*.toml` directly in the eval dir, sorted by file name,
//! parsed with spans so every problem names `file:line:col` and its case; all problems
//! are reported at once and nothing is returned from a half-read set.

use super::check::{validate_case, RawCase, CASE_FIELDS};
use super::hash::Fnv1a;
use super::{Case, CaseInput, EvalError, EvalSet};
use crate::config::toml_diag::{locate, LineIndex};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

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
        let src = match crate::files::bounded_read::read_regular_string(
            &file,
            crate::files::bounded_read::MAX_EVAL_FILE_BYTES,
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
        let text = LineIndex::new(src);
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
                    match crate::files::bounded_read::read_regular(
                        path,
                        crate::files::bounded_read::MAX_IMAGE_FILE_BYTES,
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
