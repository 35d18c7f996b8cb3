//! One watch as configured: `[[watch]]` in `config.toml` or an entry of
//! `skills/watches.toml`, and the checks every entry passes (each problem names the entry).

use serde::{Deserialize, Serialize};

/// At most this many watches: each adds a line to every student answer.
pub const MAX_WATCHES: usize = 16;
/// The longest question (characters).
pub const MAX_QUESTION_CHARS: usize = 200;
/// The longest id (characters).
pub const MAX_ID_CHARS: usize = 32;

/// When a watch alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Notify {
    /// A confirmed `yes` opens (or joins) an incident at the watch's level, which alerts
    /// like any incident.
    #[default]
    OnYes,
    /// Every confirmed change (yes → no, no → yes) alerts.
    OnChange,
    /// Never alerts (the state is still shown and published).
    Never,
}

impl Notify {
    pub const ALL: [Notify; 3] = [Notify::OnYes, Notify::OnChange, Notify::Never];

    pub fn as_str(self) -> &'static str {
        match self {
            Notify::OnYes => "on_yes",
            Notify::OnChange => "on_change",
            Notify::Never => "never",
        }
    }
}

fn default_level() -> u8 {
    1
}

fn default_debounce() -> u32 {
    2
}

/// One watch: a question the student answers on every frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    /// A slug: lower-case letters, digits and `_` (`garage_door`); the MQTT topic and the
    /// answer line use it.
    pub id: String,
    /// The question, as the user wrote it ("Is the garage door open?").
    pub question: String,
    #[serde(default)]
    pub notify: Notify,
    /// The incident level a confirmed `yes` opens (1 worth a look, 2 urgent).
    #[serde(default = "default_level")]
    pub level: u8,
    /// Frames in a row that must say the new answer before the state changes.
    #[serde(default = "default_debounce")]
    pub debounce: u32,
}

impl WatchSpec {
    pub fn new(id: &str, question: &str) -> Self {
        WatchSpec {
            id: id.to_string(),
            question: question.to_string(),
            notify: Notify::default(),
            level: default_level(),
            debounce: default_debounce(),
        }
    }
}

/// Whether `id` is a slug: starts with a letter; lower-case ASCII letters, digits and `_`.
pub fn is_slug(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && id.chars().count() <= MAX_ID_CHARS
}

/// What is wrong with one entry (`name` is how the message names it, e.g. `watch[2]
/// "garage door"`), each problem carrying its fix.
pub fn check_one(name: &str, w: &WatchSpec) -> Vec<String> {
    let mut p = Vec::new();
    if !is_slug(&w.id) {
        let suggestion = slugify(&w.id);
        p.push(format!(
            "{name}: id must be a slug (lower-case letters, digits and _, starting with a letter, \
             at most {MAX_ID_CHARS} characters), got {:?}{}",
            w.id,
            if suggestion.is_empty() {
                String::new()
            } else {
                format!("; for example {suggestion:?}")
            }
        ));
    }
    let q = w.question.trim();
    if q.is_empty() {
        p.push(format!(
            "{name}: question must not be empty: write it as a yes/no question, e.g. \"Is the garage door open?\""
        ));
    } else if q.chars().count() > MAX_QUESTION_CHARS {
        p.push(format!(
            "{name}: question is {} characters, at most {MAX_QUESTION_CHARS}: shorten it",
            q.chars().count()
        ));
    } else if q.chars().any(|c| c.is_control()) {
        p.push(format!(
            "{name}: question must be one line without control characters"
        ));
    }
    if !(1..=2).contains(&w.level) {
        p.push(format!(
            "{name}: level must be 1 (worth a look) or 2 (urgent), got {}",
            w.level
        ));
    }
    if !(1..=100).contains(&w.debounce) {
        p.push(format!(
            "{name}: debounce must be between 1 and 100 frames, got {}",
            w.debounce
        ));
    }
    p
}

/// Every problem of a list of watches (`key` is where they come from: `watch` for the
/// config's `[[watch]]`, a file name for `skills/watches.toml`): each entry by its place and
/// id, duplicates, and more than [`MAX_WATCHES`].
pub fn validate_watches(key: &str, watches: &[WatchSpec]) -> Vec<String> {
    let mut p = Vec::new();
    if watches.len() > MAX_WATCHES {
        p.push(format!(
            "{key}: {} watches, at most {MAX_WATCHES}: remove {}",
            watches.len(),
            watches.len() - MAX_WATCHES
        ));
    }
    for (i, w) in watches.iter().enumerate() {
        let name = entry_name(key, i, w);
        p.extend(check_one(&name, w));
        if watches[..i].iter().any(|o| o.id == w.id) {
            p.push(format!(
                "{name}: duplicate id {:?}: every watch needs its own id",
                w.id
            ));
        }
    }
    p
}

/// How a message names entry `i` (1-based, as a person counts `[[watch]]` tables).
pub fn entry_name(key: &str, i: usize, w: &WatchSpec) -> String {
    format!("{key}[{}] (id {:?})", i + 1, w.id)
}

/// A slug made from free text (`"Garage door"` → `garage_door`), for a message's suggestion
/// and the console's add form.
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_');
    let out = out.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    out.chars().take(MAX_ID_CHARS).collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["garage_door", "a", "door2", "stove_on_alone"] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "Garage",
            "garage door",
            "2door",
            "_x",
            "door-1",
            "ä",
            &"x".repeat(33),
        ] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert_eq!(slugify("Garage door!"), "garage_door");
        assert_eq!(slugify("2 doors"), "doors");
    }

    #[test]
    fn every_problem_names_its_entry_and_its_fix() {
        let mut long = WatchSpec::new("long_one", &"x".repeat(500));
        long.level = 3;
        let list = vec![
            WatchSpec::new("garage door", "Is the garage door open?"),
            WatchSpec::new("stove", "  "),
            WatchSpec::new("stove", "Is the stove on?"),
            long,
        ];
        let p = validate_watches("watch", &list);
        let all = p.join("\n");
        assert!(
            all.contains("watch[1] (id \"garage door\"): id must be a slug")
                && all.contains("for example \"garage_door\""),
            "{all}"
        );
        assert!(
            all.contains("watch[2] (id \"stove\"): question must not be empty"),
            "{all}"
        );
        assert!(
            all.contains("watch[3] (id \"stove\"): duplicate id \"stove\""),
            "{all}"
        );
        assert!(
            all.contains("watch[4] (id \"long_one\"): question is 500 characters, at most 200"),
            "{all}"
        );
        assert!(
            all.contains("watch[4] (id \"long_one\"): level must be 1"),
            "{all}"
        );
        assert_eq!(p.len(), 5, "{all}");
    }

    #[test]
    fn more_than_sixteen_is_refused() {
        let list: Vec<_> = (0..17)
            .map(|i| WatchSpec::new(&format!("w{i}"), "Is it on?"))
            .collect();
        let p = validate_watches("watch", &list);
        assert_eq!(
            p,
            vec!["watch: 17 watches, at most 16: remove 1".to_string()]
        );
        assert!(validate_watches("watch", &list[..16]).is_empty());
    }
}
