//! Plain-text tables for the terminal (no colours, fixed columns, bounded cells).

/// Render rows as a table with a header; cells are cut to `max_cell` characters.
pub fn render(header: &[&str], rows: &[Vec<String>], max_cell: usize) -> String {
    let cut = |s: &str| -> String {
        let s = crate::reading::sanitize::strip_controls(s).replace('\n', " ");
        if s.chars().count() > max_cell {
            let mut t: String = s.chars().take(max_cell.saturating_sub(1)).collect();
            t.push('…');
            t
        } else {
            s
        }
    };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |r: &[String]| -> String {
        r.iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths.get(i).copied().unwrap_or(0);
                format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count())))
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(&header.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    out.push('\n');
    out.push_str(
        &widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    out.push('\n');
    for r in &cells {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_and_cuts() {
        let t = super::render(
            &["id", "score"],
            &[
                vec!["a".into(), "0.50".into()],
                vec!["long-name\x1b[31m".into(), "1.00".into()],
            ],
            6,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "id      score");
        assert_eq!(lines[3], "long-…  1.00");
        assert!(!t.contains('\u{1b}'));
    }
}
