//! TOML diagnostics shared by the config and the eval-case loader: where a byte offset is
//! (line, column in characters), `file:line:col` for a span, the `[table]` in force at an
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

/// The `[table]` header in force at `offset`, for naming keys as `table.key`.
pub fn section_at(text: &str, offset: usize) -> String {
    let mut section = String::new();
    let mut pos = 0;
    for l in text.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        let t = l.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            if let Some(end) = t.find(']') {
                section = t[1..end].trim().to_string();
            }
        }
        pos += l.len();
    }
    section
}

/// Turn serde's ``unknown field `x`, expected one of `a`, `b` `` into a suggestion of the
/// nearest key (the key named `section.x`), and ``unknown variant `x`, expected …`` into
/// the list of allowed values. Other messages are returned as they are.
pub fn improve_message(raw: &str, section: &str) -> String {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        if let Some((name, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let key = if section.is_empty() {
                name.to_string()
            } else {
                format!("{section}.{name}")
            };
            // Nearest by edit distance (a swap of two letters counts as one edit).
            let best = expected
                .iter()
                .map(|c| (strsim::damerau_levenshtein(name, c), *c))
                .min_by_key(|x| x.0);
            let allowed = (name.chars().count() / 3).max(1);
            return match best {
                Some((dist, c)) if dist <= allowed => {
                    format!("unknown key `{key}`; did you mean `{c}`?")
                }
                _ if !expected.is_empty() => format!(
                    "unknown key `{key}`; valid keys here: {}",
                    expected.join(", ")
                ),
                _ => format!("unknown key `{key}`"),
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
    fn section_at_finds_the_table_in_force() {
        let src = "top = 1\n[policy]\nx = 1\n[[case]]\ny = 2\n[ frame ]\nz = 3\n";
        assert_eq!(section_at(src, 0), "");
        assert_eq!(section_at(src, src.find("x =").unwrap()), "policy");
        // An array of tables does not change the section.
        assert_eq!(section_at(src, src.find("y =").unwrap()), "policy");
        assert_eq!(section_at(src, src.find("z =").unwrap()), "frame");
    }

    #[test]
    fn unknown_field_suggests_the_nearest_key_or_lists_them() {
        let raw = "unknown field `confidence_treshold`, expected one of `confidence_threshold`, `audit_every`";
        assert_eq!(
            improve_message(raw, "policy"),
            "unknown key `policy.confidence_treshold`; did you mean `confidence_threshold`?"
        );
        let raw = "unknown field `zzz`, expected `alpha` or `beta`";
        assert_eq!(
            improve_message(raw, ""),
            "unknown key `zzz`; valid keys here: alpha, beta"
        );
        let raw = "unknown variant `webcam`, expected one of `camera`, `folder`, `file`";
        assert_eq!(
            improve_message(raw, "source"),
            "`webcam` is not allowed here; use one of: \"camera\", \"folder\", \"file\""
        );
        assert_eq!(improve_message("invalid type", "x"), "invalid type");
    }
}
