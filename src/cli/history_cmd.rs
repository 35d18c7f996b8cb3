//! `gemmaedge-tui history`: what the store holds, from a shell — a table on a terminal, one
//! JSON object per line with `--json` — and `history import LOGDIR` (old session logs in).

use crate::config::Config;
use crate::history::query::{self, Filter, Item};
use crate::history::schema;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::io::Write;
use std::path::Path;

/// What `history` was asked for.
#[derive(Debug, Clone, Default)]
pub struct HistoryArgs {
    pub since: Option<String>,
    pub until: Option<String>,
    pub incidents: bool,
    pub search: Option<String>,
    pub json: bool,
    /// Every answer, not only what is notable.
    pub all: bool,
    pub limit: usize,
}

/// `12h`, `30m`, `7d`, `90s` (that long before `now`), `2026-12-01` (that day's start,
/// UTC) or an RFC 3339 time.
pub fn parse_when(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    let bad = || {
        format!(
            "cannot read the time {t:?}: use a span before now (90s, 30m, 12h, 7d), a day \
             (2026-12-01) or a time (2026-12-01T08:00:00Z)"
        )
    };
    if let Some(unit) = t.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        if let Ok(n) = t[..t.len() - 1].parse::<i64>() {
            let span = match unit {
                's' => Duration::try_seconds(n),
                'm' => Duration::try_minutes(n),
                'h' => Duration::try_hours(n),
                'd' => Duration::try_days(n),
                'w' => Duration::try_weeks(n),
                _ => None,
            };
            return span
                .filter(|_| n >= 0)
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(bad);
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return day
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| bad())
}

/// The store's path, or a clear error when there is none yet.
fn store_path(config: &Config) -> std::path::PathBuf {
    config.history.resolved(&config.paths.logs)
}

/// `history`: prints and returns the exit code.
pub fn run(config: &Config, args: &HistoryArgs) -> i32 {
    let now = Utc::now();
    let when = |s: &Option<String>| s.as_deref().map(|s| parse_when(s, now)).transpose();
    let (since, until) = match (when(&args.since), when(&args.until)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("gemmaedge-tui history: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let path = store_path(config);
    if !path.exists() {
        eprintln!(
            "gemmaedge-tui history: no history yet at {} (the engine writes it while it \
             watches; `history import {}` brings in old session logs)",
            path.display(),
            config.paths.logs.display()
        );
        return 1;
    }
    let conn = match schema::open_read(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gemmaedge-tui history: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let filter = Filter {
        since,
        until,
        incidents_only: args.incidents,
        notable_only: !args.all,
        text: args.search.clone(),
        ..Filter::default()
    };
    let items = match query::items(&conn, &filter, None, args.limit.max(1)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gemmaedge-tui history: reading {}: {e}", path.display());
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        items.iter().try_for_each(|i| {
            let line = crate::reading::sanitize::escape_json_invisibles(
                serde_json::to_string(i).unwrap_or_default(),
            );
            writeln!(out, "{line}")
        })
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        write!(
            out,
            "{}",
            super::table::render(&["time (UTC)", "what", "level", "text"], &rows, 100)
        )
        .and_then(|_| {
            if items.len() >= args.limit {
                writeln!(out, "(the newest {} shown: --limit N for more)", args.limit)
            } else {
                Ok(())
            }
        })
    };
    // A closed pipe (`| head`) is not an error.
    let _ = written;
    0
}

/// An incident's "what" column: open or how long and how many frames, and whether someone
/// acknowledged it.
fn incident_what(x: &crate::event::IncidentEvent) -> String {
    let acked = if x.acked_at.is_some() {
        ", acknowledged"
    } else {
        ""
    };
    match x.closed_at {
        None => format!("incident #{} (open{acked})", x.id),
        Some(c) => format!(
            "incident #{} ({} s, {} frames{acked})",
            x.id,
            (c - x.opened_at).num_seconds(),
            x.frames
        ),
    }
}

fn row(i: &Item) -> Vec<String> {
    let t = i.at().format("%Y-%m-%d %H:%M:%S").to_string();
    match i {
        Item::Incident(x) => vec![t, incident_what(x), x.level.to_string(), x.title.clone()],
        Item::Frame(f) => {
            let what = if f.failed.is_some() {
                "failed".to_string()
            } else if f.verdict.is_some() {
                match f.agrees {
                    Some(true) => "teacher agrees".into(),
                    Some(false) => "teacher disagrees".into(),
                    None => "verdict".into(),
                }
            } else if f.escalated {
                format!("escalated ({})", f.triggers.join(", "))
            } else {
                "answer".into()
            };
            let text = f
                .failed
                .clone()
                .or_else(|| f.title.clone().filter(|t| !t.is_empty()))
                .or_else(|| f.answer.clone())
                .unwrap_or_default();
            vec![
                t,
                format!("#{} {what}", f.seq),
                f.level.map_or(String::new(), |l| l.to_string()),
                text,
            ]
        }
        Item::Note(n) => vec![t, n.kind.clone(), String::new(), n.text.clone()],
        Item::Offline(o) => vec![
            t,
            format!("{} offline", o.role),
            String::new(),
            match o.until {
                Some(u) => format!("{} s: {}", (u - o.from).num_seconds(), o.reason),
                None => format!("since then: {}", o.reason),
            },
        ],
    }
}

/// `history import LOGDIR`.
pub fn import(config: &Config, dir: &Path) -> i32 {
    let path = store_path(config);
    let mut opened = match schema::open_checked(&path) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gemmaedge-tui history import: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    for n in &opened.notices {
        eprintln!("gemmaedge-tui history import: {n}");
    }
    match crate::history::import::import_dir(&mut opened.conn, dir) {
        Ok(r) => {
            println!(
                "imported {} session logs from {} into {}: {} events, {} new frames ({} lines skipped)",
                r.files,
                dir.display(),
                path.display(),
                r.events,
                r.frames_after - r.frames_before,
                r.skipped
            );
            0
        }
        Err(e) => {
            eprintln!("gemmaedge-tui history import: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_says_open_or_how_long_and_whether_acknowledged() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let mut x = crate::event::IncidentEvent {
            change: crate::event::IncidentChange::Open,
            id: 3,
            seq: None,
            level: 2,
            title: "Pan smoking".into(),
            opened_at: at("2026-12-02T12:00:00Z"),
            last_at: at("2026-12-02T12:01:00Z"),
            closed_at: None,
            frames: 7,
            key_seq: None,
            acked_at: None,
            acked_by: None,
        };
        assert_eq!(incident_what(&x), "incident #3 (open)");
        x.acked_at = Some(at("2026-12-02T12:00:30Z"));
        assert_eq!(incident_what(&x), "incident #3 (open, acknowledged)");
        x.closed_at = Some(at("2026-12-02T12:03:00Z"));
        assert_eq!(
            incident_what(&x),
            "incident #3 (180 s, 7 frames, acknowledged)"
        );
        x.acked_at = None;
        assert_eq!(incident_what(&x), "incident #3 (180 s, 7 frames)");
    }

    #[test]
    fn times_a_user_types() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_when("12h", now).unwrap(), now - Duration::hours(12));
        assert_eq!(parse_when("30m", now).unwrap(), now - Duration::minutes(30));
        assert_eq!(parse_when("7d", now).unwrap(), now - Duration::days(7));
        assert_eq!(
            parse_when("2026-12-01", now).unwrap().to_rfc3339(),
            "2026-12-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_when("2026-12-01T08:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2026-12-01T08:00:00+00:00"
        );
        for bad in [
            "",
            "yesterday",
            "12x",
            "-3h",
            "2026-13-01",
            "99999999999999d",
        ] {
            let e = parse_when(bad, now).unwrap_err();
            assert!(e.contains("12h"), "{bad}: {e}");
        }
    }
}
