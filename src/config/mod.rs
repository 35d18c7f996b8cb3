//! `config.toml`: the `Config` of every section, loading it (lookup order, `OLLAMA_HOST`)
//! and its errors. The sections live in `models.rs` (student and teacher hosts) and
//! `sections.rs` (the rest); `validate.rs` checks every value against what is allowed.
//!
//! Lookup order when no `--config` is given: `./config.toml`, then
//! `$XDG_CONFIG_HOME/gemmaedge/config.toml` (or `~/.config/...`), then the packaged
//! service's `/etc/gemmaedge/config.toml`, then built-in defaults.

mod models;
mod sections;
pub mod toml_diag;
mod validate;
pub use validate::CANDIDATES;

pub use models::{
    HostConfig, HostKind, KeepAlive, KeepAliveSpan, DEFAULT_KEEP_ALIVE, DEFAULT_STUDENT_MAX_TOKENS,
    DEFAULT_TEACHER_MAX_TOKENS,
};
pub use sections::{
    hostname, ConfidenceMode, ConsoleConfig, DeviceConfig, EvalConfig, FrameConfig, NotifyConfig,
    PathsConfig, PolicyConfig, PrivacyConfig, ServiceConfig, SourceConfig, SourceKind,
    UpskillConfig, DEFAULT_SAFETY_KEYWORDS,
};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// Everything the program reads from `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub student: HostConfig,
    pub teacher: HostConfig,
    pub source: SourceConfig,
    pub frame: FrameConfig,
    pub policy: PolicyConfig,
    pub paths: PathsConfig,
    pub upskill: UpskillConfig,
    pub console: ConsoleConfig,
    pub privacy: PrivacyConfig,
    pub device: DeviceConfig,
    pub notify: NotifyConfig,
    pub eval: EvalConfig,
    pub service: ServiceConfig,
    pub mqtt: crate::mqtt::MqttConfig,
    pub history: crate::history::HistoryConfig,
    pub incidents: crate::history::IncidentsConfig,
    pub finetune: crate::finetune::FinetuneConfig,
    /// `[[watch]]`: yes/no questions the student answers on every frame
    /// (`skills/watches.toml`, when the console wrote one, replaces them).
    pub watch: Vec<crate::watch::WatchSpec>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            student: HostConfig::student_default(),
            teacher: HostConfig::teacher_default(),
            source: SourceConfig::default(),
            frame: FrameConfig::default(),
            policy: PolicyConfig::default(),
            paths: PathsConfig::default(),
            upskill: UpskillConfig::default(),
            console: ConsoleConfig::default(),
            privacy: PrivacyConfig::default(),
            device: DeviceConfig::default(),
            notify: NotifyConfig::default(),
            eval: EvalConfig::default(),
            service: ServiceConfig::default(),
            mqtt: crate::mqtt::MqttConfig::default(),
            history: crate::history::HistoryConfig::default(),
            incidents: crate::history::IncidentsConfig::default(),
            finetune: crate::finetune::FinetuneConfig::default(),
            watch: Vec::new(),
        }
    }
}

/// A config that cannot be used. Displayed as one or more lines a user can act on.
#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// TOML syntax error, or a value of the wrong type, or an unknown key.
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value of the right type but outside what is allowed.
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error }
                if error.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                write!(
                    f,
                    "cannot read config {}: {}",
                    path.display(),
                    crate::files::access::denied_message(path, None)
                )
            }
            ConfigError::Read { path, error } => {
                write!(f, "cannot read config {}: {error}", path.display())
            }
            ConfigError::Parse {
                path,
                line,
                column,
                message,
            } => write!(
                f,
                "config error in {} at line {line}, column {column}: {message}",
                path.display()
            ),
            ConfigError::Invalid { path, problems } => {
                write!(f, "config error in {}:", path.display())?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the config came from, for the status line and `check`.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigOrigin {
    File(PathBuf),
    BuiltIn,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::File(p) => write!(f, "{}", p.display()),
            ConfigOrigin::BuiltIn => write!(f, "built-in defaults"),
        }
    }
}

impl Config {
    /// Load the config: an explicit path must exist; otherwise the lookup order applies.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigOrigin), ConfigError> {
        if let Some(p) = explicit {
            return Ok((Self::load_file(p)?, ConfigOrigin::File(p.to_path_buf())));
        }
        for candidate in default_locations() {
            if candidate.is_file() {
                return Ok((Self::load_file(&candidate)?, ConfigOrigin::File(candidate)));
            }
        }
        let mut cfg = Config::default();
        cfg.apply_env();
        Ok((cfg, ConfigOrigin::BuiltIn))
    }

    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::files::bounded_read::read_regular_string(
            path,
            crate::files::bounded_read::MAX_CONFIG_FILE_BYTES,
        )
        .map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse_str(&text, path)
    }

    /// Parse and validate TOML text; `path` is only used in messages.
    pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let host_in_file = student_host_given(text);
        let mut cfg: Config = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        if !host_in_file {
            cfg.apply_env();
        }
        cfg.validate().map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })?;
        Ok(cfg)
    }

    /// `OLLAMA_HOST`, when set, overrides the student's default host.
    fn apply_env(&mut self) {
        if let Ok(h) = std::env::var("OLLAMA_HOST") {
            let h = h.trim();
            if !h.is_empty() {
                self.student.host = normalize_ollama_host(h);
            }
        }
    }

    /// The watches file the console writes (`skills/watches.toml`).
    pub fn watches_path(&self) -> PathBuf {
        crate::watch::file::watches_path(&self.paths.skills)
    }

    /// The watches in use: `skills/watches.toml` when it exists (and is sound), else the
    /// config's `[[watch]]`.
    pub fn current_watches(&self) -> Vec<crate::watch::WatchSpec> {
        match crate::watch::file::load(&self.watches_path()) {
            Ok(Some(w)) => w,
            _ => self.watch.clone(),
        }
    }

    /// The skill file the student uses.
    pub fn skill_path(&self) -> PathBuf {
        self.paths.skills.join("skill.txt")
    }
}

/// The config the Debian package installs (the service's, read by consoles too).
pub const SYSTEM_CONFIG: &str = "/etc/gemmaedge/config.toml";

fn default_locations() -> Vec<PathBuf> {
    locations(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

/// Where a config is looked for, first first (pure): `./config.toml`, the XDG path,
/// the system one.
pub fn locations(
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("config.toml")];
    if let Some(x) = xdg_config_home.filter(|s| !s.is_empty()) {
        v.push(PathBuf::from(x).join("gemmaedge/config.toml"));
    } else if let Some(home) = home.filter(|s| !s.is_empty()) {
        v.push(PathBuf::from(home).join(".config/gemmaedge/config.toml"));
    }
    v.push(PathBuf::from(SYSTEM_CONFIG));
    v
}

/// `OLLAMA_HOST` may be `0.0.0.0`, `host:port` or a full URL; make it a URL.
/// Like Ollama's own client: without a scheme the port defaults to 11434; with one,
/// the scheme's default port applies.
pub fn normalize_ollama_host(h: &str) -> String {
    let url = if h.starts_with("http://") || h.starts_with("https://") {
        h.to_string()
    } else {
        let (hp, path) = h.split_once('/').map_or((h, ""), |(a, b)| (a, b));
        let has_port = hp
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let hp = if has_port {
            hp.to_string()
        } else {
            format!("{hp}:11434")
        };
        if path.is_empty() {
            format!("http://{hp}")
        } else {
            format!("http://{hp}/{path}")
        }
    };
    // 0.0.0.0 is where a server listens, not where a client connects.
    url.replace("://0.0.0.0", "://127.0.0.1")
        .trim_end_matches('/')
        .to_string()
}

/// True when the TOML text sets `[student] host` itself (then OLLAMA_HOST does not override it).
fn student_host_given(text: &str) -> bool {
    let Ok(v) = text.parse::<toml::Table>() else {
        return false;
    };
    v.get("student")
        .and_then(|s| s.as_table())
        .is_some_and(|t| t.contains_key("host"))
}

fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e.span().map_or((1, 1), |s| {
        crate::config::toml_diag::line_col(text, s.start)
    });
    let raw = e.message().trim().to_string();
    let message =
        crate::config::toml_diag::improve_message(&raw, text, e.span().map_or(0, |s| s.start));
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_system_config_comes_after_the_local_and_the_xdg_one() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            locations(Some("/x".into()), Some("/home/pi".into())),
            [
                p("config.toml"),
                p("/x/gemmaedge/config.toml"),
                p(SYSTEM_CONFIG)
            ]
        );
        assert_eq!(
            locations(Some("".into()), Some("/home/pi".into())),
            [
                p("config.toml"),
                p("/home/pi/.config/gemmaedge/config.toml"),
                p("/etc/gemmaedge/config.toml")
            ]
        );
        assert_eq!(locations(None, None), [p("config.toml"), p(SYSTEM_CONFIG)]);
    }

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse_str(t, Path::new("config.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("[student]\nhost = \"http://127.0.0.1:11434\"\n").unwrap();
        assert_eq!(c.teacher.model, "gemma4:26b");
        assert_eq!(c.policy.confidence_threshold, 0.55);
        assert_eq!(c.frame.max_side, 768);
    }

    #[test]
    fn shipped_config_parses_and_matches_defaults_for_policy() {
        let text = include_str!("../../config.toml");
        let c = parse(text).expect("shipped config.toml must parse");
        assert_eq!(c.policy, PolicyConfig::default());
        let d = Config::default();
        for (shipped, default) in [(&c.student, &d.student), (&c.teacher, &d.teacher)] {
            assert_eq!(shipped.keep_alive, default.keep_alive);
            assert_eq!(shipped.warm_up, default.warm_up);
        }
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = parse("[policy]\nconfidence_threshold = = 0.5\n").unwrap_err();
        match e {
            ConfigError::Parse { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column > 1);
            }
            other => panic!("expected parse error, got {other}"),
        }
    }

    #[test]
    fn out_of_range_names_key_value_and_range() {
        let e = parse("[policy]\nconfidence_threshold = 1.5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config error in config.toml:\n  - policy.confidence_threshold must be between 0.0 and 1.0, got 1.5"
        );
    }

    #[test]
    fn unknown_key_suggests_nearest() {
        let e = parse("[policy]\nconfidence_treshold = 0.5\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("unknown key `policy.confidence_treshold`"),
            "{s}"
        );
        assert!(s.contains("did you mean `confidence_threshold`"), "{s}");
        assert!(s.contains("line 2"), "{s}");
    }

    #[test]
    fn unknown_tables_and_keys_in_every_shape_are_named_with_line_and_column() {
        let cases = [
            // An unknown table after a known one is a table, not a key of the one before.
            (
                "[paths]\nlogs = \"x\"\n[histroy]\nkeep = 1\n",
                "unknown table `[histroy]`; did you mean `[history]`?",
                (3, 2),
            ),
            (
                "[mqtt]\nurl = \"\"\n[notfy]\n",
                "unknown table `[notfy]`; did you mean `[notify]`?",
                (3, 2),
            ),
            // An unknown array of tables.
            (
                "[mqtt]\nurl = \"\"\n[[wach]]\nname = \"a\"\n",
                "unknown table `[[wach]]`",
                (3, 3),
            ),
            (
                "[[notfy]]\n",
                "unknown table `[[notfy]]`; did you mean `[notify]`?",
                (1, 3),
            ),
            // An unknown key inside a known table.
            (
                "[policy]\nconfidence_treshold = 0.5\n",
                "unknown key `policy.confidence_treshold`; did you mean `confidence_threshold`?",
                (2, 1),
            ),
            // An unknown key in a dotted key, at the top and inside a table.
            (
                "student.modle = \"x\"\n",
                "unknown key `student.modle`; did you mean `model`?",
                (1, 9),
            ),
            (
                "[student.modle]\nx = 1\n",
                "unknown key `student.modle`; did you mean `model`?",
                (1, 10),
            ),
            // An unknown key of an inline table.
            (
                "teacher = { host = \"http://a:1\", modle = \"x\" }\n",
                "unknown key `teacher.modle`; did you mean `model`?",
                (1, 34),
            ),
        ];
        for (src, want, (line, col)) in cases {
            let e = parse(src).unwrap_err();
            let s = e.to_string();
            assert!(s.contains(want), "{src:?}: {s}");
            assert!(
                s.contains(&format!("at line {line}, column {col}:")),
                "{src:?}: {s}"
            );
        }
    }

    #[test]
    fn watches_are_read_and_a_bad_one_is_named() {
        let c = parse(
            "[[watch]]\nid = \"garage_door\"\nquestion = \"Is the garage door open?\"\n\
             [[watch]]\nid = \"stove_on\"\nquestion = \"Is the stove on?\"\nnotify = \"on_change\"\nlevel = 2\ndebounce = 3\n",
        )
        .unwrap();
        assert_eq!(c.watch.len(), 2);
        assert_eq!(c.watch[0].notify, crate::watch::Notify::OnYes);
        assert_eq!((c.watch[0].level, c.watch[0].debounce), (1, 2));
        assert_eq!(c.watch[1].notify, crate::watch::Notify::OnChange);
        assert_eq!((c.watch[1].level, c.watch[1].debounce), (2, 3));
        let e = parse(
            "[[watch]]\nid = \"garage_door\"\nquestion = \"Open?\"\n\
             [[watch]]\nid = \"garage_door\"\nquestion = \"\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("watch[2] (id \"garage_door\"): question must not be empty"),
            "{e}"
        );
        assert!(
            e.contains("watch[2] (id \"garage_door\"): duplicate id"),
            "{e}"
        );
        let e = parse("[[watch]]\nid = \"a\"\nquestoin = \"Open?\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("did you mean `question`"), "{e}");
        let e = parse("[[wach]]\nid = \"a\"\n").unwrap_err().to_string();
        assert!(e.contains("did you mean `[[watch]]`?"), "{e}");
        let e = parse("[[watch]]\nid = \"a\"\nquestion = \"Open?\"\nnotify = \"always\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("on_yes") && e.contains("on_change"), "{e}");
    }

    #[test]
    fn unknown_source_kind_lists_allowed() {
        let e = parse("[source]\nkind = \"webcam\"\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("\"camera\""), "{s}");
        assert!(s.contains("\"folder\""), "{s}");
    }

    #[test]
    fn folder_without_path_is_invalid() {
        let e = parse("[source]\nkind = \"folder\"\n").unwrap_err();
        assert!(e.to_string().contains("source.path"));
    }

    #[test]
    fn keep_alive_forms_read_like_ollama() {
        let ka = |t: &str| {
            parse(&format!("[teacher]\nkeep_alive = {t}\n")).map(|c| {
                (
                    c.teacher.keep_alive.span().unwrap(),
                    c.teacher.keep_alive.wire(),
                )
            })
        };
        let mins = |m: u64| KeepAliveSpan::For(Duration::from_secs(m * 60));
        assert_eq!(
            ka("\"30m\"").unwrap(),
            (mins(30), Some(serde_json::json!("30m")))
        );
        assert_eq!(ka("\"1h30m\"").unwrap().0, mins(90));
        assert_eq!(
            ka("\"2.5s\"").unwrap().0,
            KeepAliveSpan::For(Duration::from_millis(2500))
        );
        assert_eq!(ka("\"0\"").unwrap().0, KeepAliveSpan::For(Duration::ZERO));
        assert_eq!(ka("\"-1m\"").unwrap().0, KeepAliveSpan::Forever);
        assert_eq!(
            ka("-1").unwrap(),
            (KeepAliveSpan::Forever, Some(serde_json::json!(-1)))
        );
        assert_eq!(ka("300").unwrap(), (mins(5), Some(serde_json::json!(300))));
        assert_eq!(
            ka("1.5").unwrap(),
            (
                KeepAliveSpan::For(Duration::from_millis(1500)),
                Some(serde_json::json!(1.5))
            )
        );
        assert_eq!(ka("\"\"").unwrap(), (KeepAliveSpan::ServerDefault, None));
        // Go's ParseDuration wants a unit: Ollama would answer every call with a 400.
        for bad in [
            "\"5\"",
            "\"5 min\"",
            "\"forever\"",
            "\"1d\"",
            "\"-\"",
            "\"1e3s\"",
        ] {
            let e = ka(bad).unwrap_err().to_string();
            assert!(
                e.contains("teacher.keep_alive must be a duration"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            Config::default().teacher.keep_alive.span().unwrap(),
            mins(30)
        );
    }

    #[test]
    fn ollama_host_forms() {
        assert_eq!(normalize_ollama_host("0.0.0.0"), "http://127.0.0.1:11434");
        assert_eq!(
            normalize_ollama_host("10.0.0.2:8080"),
            "http://10.0.0.2:8080"
        );
        assert_eq!(
            normalize_ollama_host("https://ollama.example/"),
            "https://ollama.example"
        );
        assert_eq!(
            normalize_ollama_host("http://127.0.0.1:11434"),
            "http://127.0.0.1:11434"
        );
    }
}
