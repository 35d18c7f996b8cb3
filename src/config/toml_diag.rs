//! TOML diagnostics shared by the config and the eval-case loader: where a byte offset is
//! (line, column in characters), `file:line:col` for a span, the tables around a name at an
//! offset, and serde's "unknown field" / "unknown variant" messages made into suggestions.

use std::ops::Range;
use std::path::Path;

/// A text with where each of its lines starts, found once: locating a span is then a
/// binary search, not a rescan from the top (which made loading many cases quadratic).
pub struct LineIndex<'a> {
    src: &'a str,
    /// Byte offset of the start of each line (the first is 0).
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { src, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset. An offset past the end is
    /// the end; one inside a multi-byte character is that character's start.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
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

/// 1-based line and column (in characters) of a byte offset in `text`, for one lookup;
/// [`LineIndex`] for many in the same text.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(offset)
}

/// `file:line:col` for a span, or just `file` without one. The path is escaped: it is
/// echoed to the terminal.
pub fn locate(file: &Path, text: &LineIndex<'_>, span: Option<Range<usize>>) -> String {
    let shown = crate::reading::sanitize::escape_line(&file.display().to_string());
    match span {
        Some(s) => {
            let (l, c) = text.line_col(s.start);
            format!("{shown}:{l}:{c}")
        }
        None => shown,
    }
}

/// Where a name at a byte offset sits: the tables around it, and whether it is itself a
/// table header's first name (`[name]` or `[[name]]`, a top-level table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyContext {
    /// The table path the name is a key of (`["student"]` for `student.modle = …`,
    /// `[student] modle = …` and `student = { modle = … }`; empty at the top level).
    pub path: Vec<String>,
    /// `Some(false)` for `[name]`, `Some(true)` for `[[name]]` at the top level.
    pub header: Option<bool>,
}

/// The context of the name that starts at `offset` (a serde error's span).
pub fn key_context(text: &str, offset: usize) -> KeyContext {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..offset];
    let trimmed = before.trim_start();
    if let Some(inner) = trimmed.strip_prefix('[') {
        let array = inner.starts_with('[');
        let inner = inner.trim_start_matches('[');
        let path = dotted_prefix(inner);
        let header = path.is_empty().then_some(array);
        return KeyContext { path, header };
    }
    let mut path = section_path(&text[..line_start]);
    path.extend(inline_prefix(before));
    KeyContext { path, header: None }
}

/// The table path set by the last `[a.b]` or `[[a.b]]` header in `text`.
fn section_path(text: &str) -> Vec<String> {
    text.lines()
        .rev()
        .find_map(|l| {
            let t = l.trim_start();
            let inner = t.strip_prefix('[')?.trim_start_matches('[');
            let end = inner.find(']')?;
            Some(split_key(&inner[..end]))
        })
        .unwrap_or_default()
}

/// `a . "b" . c` → `["a", "b", "c"]`.
fn split_key(k: &str) -> Vec<String> {
    k.split('.')
        .map(|p| p.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The complete dotted segments before the name (`a.b.` → `["a", "b"]`).
fn dotted_prefix(s: &str) -> Vec<String> {
    match s.rfind('.') {
        Some(i) => split_key(&s[..i]),
        None => Vec::new(),
    }
}

/// The keys a name is nested under on its own line: `a.b.` before it, and the keys of
/// inline tables still open (`x = { y = { ` → `["x", "y"]`). Strings in values are skipped.
fn inline_prefix(line: &str) -> Vec<String> {
    let mut open: Vec<Vec<String>> = Vec::new();
    let mut key = String::new();
    let mut in_value = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_value {
            match c {
                '"' | '\'' => {
                    for d in chars.by_ref() {
                        if d == c {
                            break;
                        }
                    }
                }
                '{' => {
                    open.push(split_key(&key));
                    key.clear();
                    in_value = false;
                }
                ',' => in_value = false,
                '}' => {
                    open.pop();
                }
                _ => {}
            }
        } else {
            match c {
                '=' => {
                    in_value = true;
                    // `key = {` opens a table named by the key; any other value does not.
                    while chars.peek().is_some_and(|d| d.is_whitespace()) {
                        chars.next();
                    }
                    if chars.peek() == Some(&'{') {
                        chars.next();
                        open.push(split_key(&key));
                        in_value = false;
                    }
                    key.clear();
                }
                '{' | ',' => key.clear(),
                '}' => {
                    open.pop();
                    key.clear();
                }
                _ => key.push(c),
            }
        }
    }
    let mut path: Vec<String> = open.into_iter().flatten().collect();
    path.extend(dotted_prefix(&key));
    path
}

/// Nearest candidate by edit distance (a swap of two letters counts as one edit), when
/// near enough to be a typo.
fn nearest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let (dist, best) = candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), *c))
        .min_by_key(|x| x.0)?;
    (dist <= (name.chars().count() / 3).max(1)).then_some(best)
}

/// Turn serde's ``unknown field `x`, expected one of `a`, `b` `` at `offset` of `text`
/// into what it is — ``unknown table `[x]` `` (or `[[x]]`) at the top level, else
/// ``unknown key `table.x` `` — with the nearest valid name, and ``unknown variant `x`,
/// expected …`` into the list of allowed values. Other messages are returned as they are.
/// The config's arrays of tables (`[[watch]]`): a suggestion keeps their double brackets.
const ARRAY_TABLES: &[&str] = &["watch"];

pub fn improve_message(raw: &str, text: &str, offset: usize) -> String {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        if let Some((name, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let ctx = key_context(text, offset);
            if let Some(array) = ctx.header {
                let shown = |n: &str| {
                    if array {
                        format!("[[{n}]]")
                    } else {
                        format!("[{n}]")
                    }
                };
                return match nearest(name, &expected) {
                    Some(c) => format!(
                        "unknown table `{}`; did you mean `{}`?",
                        shown(name),
                        if array && ARRAY_TABLES.contains(&c) {
                            shown(c)
                        } else {
                            format!("[{c}]")
                        }
                    ),
                    None if !expected.is_empty() => format!(
                        "unknown table `{}`; valid tables: {}",
                        shown(name),
                        expected
                            .iter()
                            .map(|e| format!("[{e}]"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => format!("unknown table `{}`", shown(name)),
                };
            }
            let mut key = ctx.path.join(".");
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(name);
            return match nearest(name, &expected) {
                Some(c) => format!("unknown key `{key}`; did you mean `{c}`?"),
                None if !expected.is_empty() => format!(
                    "unknown key `{key}`; valid keys here: {}",
                    expected.join(", ")
                ),
                None => format!("unknown key `{key}`"),
            };
        }
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        if let Some((name, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            return format!(
                "`{name}` is not allowed here; use one of: {}",
                expected
                    .iter()
                    .map(|e| format!("\"{e}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    raw.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters() {
        let src = "ab\ncdé\nxyz";
        let t = LineIndex::new(src);
        assert_eq!(t.line_col(0), (1, 1));
        assert_eq!(t.line_col(2), (1, 3));
        assert_eq!(t.line_col(3), (2, 1));
        assert_eq!(t.line_col(8), (3, 1));
        assert_eq!(t.line_col(9), (3, 2));
        assert_eq!(t.line_col(100), (3, 4));
        // Inside a multi-byte character: its start.
        assert_eq!(t.line_col(6), (2, 3));
        assert_eq!(LineIndex::new("").line_col(0), (1, 1));
    }

    #[test]
    fn multibyte_columns_are_characters_not_bytes() {
        // `°` is 2 bytes, `€` 3, `🔥` 4: the `x` after them is column 4 of line 2.
        let src = "key = 1\n°€🔥x = 2\n";
        let x = src.find('x').unwrap();
        assert_eq!(line_col(src, x), (2, 4));
        // Every byte inside the emoji is the emoji's own column, never a panic.
        let fire = src.find('🔥').unwrap();
        for inside in fire..fire + 4 {
            assert_eq!(line_col(src, inside), (2, 3), "offset {inside}");
        }
        // The free function and the index agree everywhere.
        let index = LineIndex::new(src);
        for offset in 0..=src.len() + 2 {
            assert_eq!(line_col(src, offset), index.line_col(offset), "{offset}");
        }
    }

    #[test]
    fn locate_names_file_line_and_column_and_escapes_the_path() {
        let src = "a = 1\nbé = 2\n";
        let t = LineIndex::new(src);
        let at = src.find('=').unwrap();
        assert_eq!(
            locate(Path::new("dir/cases.toml"), &t, Some(at..at + 1)),
            "dir/cases.toml:1:3"
        );
        assert_eq!(locate(Path::new("x.toml"), &t, Some(12..13)), "x.toml:2:6");
        assert_eq!(locate(Path::new("x.toml"), &t, None), "x.toml");
        assert_eq!(locate(Path::new("a\nb.toml"), &t, None), "a\\nb.toml");
    }

    #[test]
    fn the_context_of_a_name_in_every_shape() {
        let at = |src: &str, name: &str| key_context(src, src.rfind(name).unwrap());
        let top = |array| KeyContext {
            path: vec![],
            header: Some(array),
        };
        let under = |p: &[&str]| KeyContext {
            path: p.iter().map(|s| s.to_string()).collect(),
            header: None,
        };
        assert_eq!(at("[paths]\nlogs = 1\n[histroy]\n", "histroy"), top(false));
        assert_eq!(at("[mqtt]\nurl = 1\n[[wach]]\n", "wach"), top(true));
        assert_eq!(at("[ notfy ]\n", "notfy"), top(false));
        assert_eq!(
            at("[policy]\nconfidence_treshold = 1\n", "treshold"),
            under(&["policy"])
        );
        assert_eq!(at("student.modle = 1\n", "modle"), under(&["student"]));
        assert_eq!(at("[student.modle]\n", "modle"), under(&["student"]));
        assert_eq!(at("[[case]]\nx = 1\nzz = 2\n", "zz"), under(&["case"]));
        assert_eq!(
            at("student = { modle = \"x\" }\n", "modle"),
            under(&["student"])
        );
        assert_eq!(
            at(
                "student = { host = \"a{,}\", headers = { X = 1 }, modle = 2 }\n",
                "modle"
            ),
            under(&["student"])
        );
        assert_eq!(at("a = { b = { c = 1 } }\n", "c"), under(&["a", "b"]));
        assert_eq!(
            at("[paths]\n  x.y.zz = 1\n", "zz"),
            under(&["paths", "x", "y"])
        );
    }

    #[test]
    fn unknown_names_are_named_as_what_they_are_with_the_nearest_valid_one() {
        let tables = "unknown field `notfy`, expected one of `student`, `notify`, `mqtt`";
        let src = "[mqtt]\nurl = \"\"\n[notfy]\n";
        assert_eq!(
            improve_message(tables, src, src.rfind("notfy").unwrap()),
            "unknown table `[notfy]`; did you mean `[notify]`?"
        );
        let raw = "unknown field `wach`, expected one of `student`, `notify`, `mqtt`";
        let src = "[mqtt]\nurl = \"\"\n[[wach]]\n";
        assert_eq!(
            improve_message(raw, src, src.rfind("wach").unwrap()),
            "unknown table `[[wach]]`; valid tables: [student], [notify], [mqtt]"
        );
        let raw = "unknown field `confidence_treshold`, expected one of `confidence_threshold`, `audit_every`";
        let src = "[policy]\nconfidence_treshold = 1\n";
        assert_eq!(
            improve_message(raw, src, 9),
            "unknown key `policy.confidence_treshold`; did you mean `confidence_threshold`?"
        );
        let raw = "unknown field `zzz`, expected `alpha` or `beta`";
        assert_eq!(
            improve_message(raw, "zzz = 1", 0),
            "unknown key `zzz`; valid keys here: alpha, beta"
        );
        let raw = "unknown variant `webcam`, expected one of `camera`, `folder`, `file`";
        assert_eq!(
            improve_message(raw, "", 0),
            "`webcam` is not allowed here; use one of: \"camera\", \"folder\", \"file\""
        );
        assert_eq!(improve_message("invalid type", "", 0), "invalid type");
    }
}
