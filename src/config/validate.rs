//! Validating a parsed config: every problem at once, each naming the key, the value and
//! what is allowed. Every numeric limit is one `check_range` line (key, value, range).

use super::{Config, HostConfig, SourceKind};
use std::fmt::Display;
use std::ops::RangeInclusive;

/// Candidates an upskill run may ask for: `upskill.candidates`, and the socket's and the
/// command line's `candidates`.
pub const CANDIDATES: RangeInclusive<usize> = 1..=32;

/// A limit as the message words it: floats keep their decimal point (`0.0`, `1.0`), so a
/// float key reads differently from an integer one.
trait Bound: Copy + PartialOrd + Display {
    fn shown(self) -> String;
}

macro_rules! int_bound {
    ($($t:ty),*) => {$(
        impl Bound for $t {
            fn shown(self) -> String {
                self.to_string()
            }
        }
    )*};
}
int_bound!(u8, u32, u64, usize);

impl Bound for f32 {
    fn shown(self) -> String {
        format!("{self:?}")
    }
}

impl Bound for f64 {
    fn shown(self) -> String {
        format!("{self:?}")
    }
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    /// `key must be between LOW and HIGH, got VALUE` unless `value` is in `range`; `low_note`
    /// follows the low bound (`0.0 (off)`). NaN is never in range. True when it is.
    fn check_range<T: Bound>(
        &mut self,
        key: &str,
        value: T,
        range: RangeInclusive<T>,
        low_note: &str,
    ) -> bool {
        if range.contains(&value) {
            return true;
        }
        let low_note = if low_note.is_empty() {
            String::new()
        } else {
            format!(" {low_note}")
        };
        self.0.push(format!(
            "{key} must be between {}{low_note} and {}, got {value}",
            range.start().shown(),
            range.end().shown(),
        ));
        false
    }

    /// Adds `problem()` when `ok` is false.
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }
}

impl Config {
    /// Every problem at once, each naming the key, the value and what is allowed.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Problems::default();
        for (name, h) in [("student", &self.student), ("teacher", &self.teacher)] {
            check_host(&mut p, name, h);
        }

        let s = &self.source;
        p.check(s.fps > 0.0 && s.fps <= 120.0, || {
            format!("source.fps must be above 0 and at most 120, got {}", s.fps)
        });
        let needs_path = matches!(s.kind, SourceKind::Folder | SourceKind::File);
        p.check(!needs_path || !s.path.trim().is_empty(), || {
            let (what, kind) = if s.kind == SourceKind::Folder {
                ("a folder of images", "folder")
            } else {
                ("an image file", "file")
            };
            format!("source.path must name {what} when source.kind = \"{kind}\"")
        });
        p.check_range("source.min_change", s.min_change, 0.0..=1.0, "");
        if let Err(e) = crate::frame::camera_mode::parse_camera_mode(&s.camera_mode) {
            p.0.push(e);
        }

        let webhook = &self.notify.webhook;
        p.check(
            webhook.is_empty() || webhook.starts_with("http://") || webhook.starts_with("https://"),
            || format!("notify.webhook must start with http:// or https://, got {webhook:?}"),
        );
        for change in &self.notify.on {
            p.check(["open", "raise", "close"].contains(&change.as_str()), || {
                format!(
                    "notify.on: {change:?} is not an incident change: use any of \"open\", \"raise\", \"close\""
                )
            });
        }
        p.0.extend(crate::watch::validate_watches("watch", &self.watch));
        p.check(!self.device.name.trim().is_empty(), || {
            "device.name must not be empty".into()
        });
        // Also without MQTT: the name is in every log line and verdict request.
        if let Some(why) = crate::mqtt::config::invisible_in_name(&self.device.name) {
            // With MQTT on, its own check says it (as a topic level).
            p.check(self.mqtt.enabled(), || {
                format!(
                    "device.name {:?}: {why}: rename it in [device] name",
                    self.device.name
                )
            });
        }

        p.check_range("frame.max_side", self.frame.max_side, 32..=4096, "");
        p.check_range("frame.jpeg_quality", self.frame.jpeg_quality, 1..=100, "");

        let policy = &self.policy;
        p.check_range(
            "policy.confidence_threshold",
            policy.confidence_threshold,
            0.0..=1.0,
            "",
        );
        p.check(
            !policy.safety_keywords.iter().any(|k| k.trim().is_empty()),
            || "policy.safety_keywords must not contain an empty word".into(),
        );
        p.check_range("policy.storm_share", policy.storm_share, 0.0..=1.0, "(off)");
        p.check_range("policy.teacher_queue", policy.teacher_queue, 1..=1000, "");
        p.check_range(
            "policy.student_down_secs",
            policy.student_down_secs,
            0..=86_400,
            "",
        );
        p.check_range(
            "policy.fallback_every_secs",
            policy.fallback_every_secs,
            0..=86_400,
            "(off)",
        );
        p.check_range(
            "policy.forced_per_minute",
            policy.forced_per_minute,
            0..=600,
            "(none)",
        );

        let up = &self.upskill;
        p.check_range("upskill.candidates", up.candidates, CANDIDATES, "");
        p.check_range("upskill.concurrency", up.concurrency, 1..=64, "");
        p.check_range("upskill.min_improvement", up.min_improvement, 0.0..=1.0, "");
        p.check(up.max_prompt_chars >= 20, || {
            format!(
                "upskill.max_prompt_chars must be at least 20, got {}",
                up.max_prompt_chars
            )
        });
        let samples = up.bootstrap_samples;
        p.check_range("upskill.bootstrap_samples", samples, 10..=100_000, "");
        p.check_range(
            "upskill.calls_between_frames",
            up.calls_between_frames,
            0..=64,
            "",
        );
        p.check_range("eval.temperature", self.eval.temperature, 0.0..=2.0, "");
        p.check_range("console.history", self.console.history, 10..=100_000, "");
        let queue = self.service.client_queue;
        p.check_range("service.client_queue", queue, 16..=65_536, "");
        let clients = self.service.max_clients;
        p.check_range("service.max_clients", clients, 1..=1000, "");
        p.0.extend(crate::mqtt::config::validate(&self.mqtt, &self.device.name));
        p.0.extend(crate::history::config::validate(
            &self.history,
            &self.incidents,
        ));
        p.0.extend(crate::finetune::config::validate(&self.finetune));

        if p.0.is_empty() {
            Ok(())
        } else {
            Err(p.0)
        }
    }
}

/// The checks of `[student]` or `[teacher]` (`name`).
fn check_host(p: &mut Problems, name: &str, h: &HostConfig) {
    p.check(
        h.host.starts_with("http://") || h.host.starts_with("https://"),
        || {
            format!(
                "{name}.host must start with http:// or https://, got {:?}",
                h.host
            )
        },
    );
    p.check(!h.model.trim().is_empty(), || {
        format!("{name}.model must not be empty")
    });
    p.check_range(
        &format!("{name}.timeout_secs"),
        h.timeout_secs,
        1..=3600,
        "",
    );
    if let Some(t) = h.temperature {
        p.check_range(&format!("{name}.temperature"), t, 0.0..=2.0, "");
    }
    let tokens_key = format!("{name}.max_tokens");
    if p.check_range(&tokens_key, h.max_tokens, 0..=32_768, "(no cap)") {
        p.check(!(1..32).contains(&h.max_tokens), || {
            format!(
                "{tokens_key} must be 0 (no cap) or at least 32 (an answer needs room), got {}",
                h.max_tokens
            )
        });
    }
    if let Err(why) = h.keep_alive.span() {
        p.0.push(format!(
            "{name}.keep_alive must be a duration like \"30m\", \"24h\", \"90s\", a number of \
             seconds (-1 = keep loaded, 0 = unload after each call) or \"\" (the server's \
             default): {why}"
        ));
    }
    p.check_range(&format!("{name}.max_retries"), h.max_retries, 0..=10, "");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message the validation gives, exactly as it read before the table.
    #[test]
    fn each_limit_keeps_its_message() {
        let mut c = Config::default();
        c.student.host = "ftp://x".into();
        c.student.model = " ".into();
        c.student.timeout_secs = 0;
        c.student.temperature = Some(2.5);
        c.student.max_tokens = 40_000;
        c.student.max_retries = 11;
        c.teacher.max_tokens = 5;
        c.source.fps = 0.0;
        c.source.kind = SourceKind::File;
        c.source.min_change = 1.5;
        c.notify.webhook = "mailto:x".into();
        c.device.name = String::new();
        c.frame.max_side = 10;
        c.frame.jpeg_quality = 0;
        c.policy.confidence_threshold = f32::NAN;
        c.policy.safety_keywords = vec![" ".into()];
        c.policy.storm_share = -0.5;
        c.policy.teacher_queue = 0;
        c.upskill.candidates = 33;
        c.upskill.concurrency = 0;
        c.upskill.min_improvement = 2.0;
        c.upskill.max_prompt_chars = 19;
        c.upskill.bootstrap_samples = 9;
        c.eval.temperature = 3.0;
        c.console.history = 100_001;
        let got = c.validate().unwrap_err();
        let want = [
            "student.host must start with http:// or https://, got \"ftp://x\"",
            "student.model must not be empty",
            "student.timeout_secs must be between 1 and 3600, got 0",
            "student.temperature must be between 0.0 and 2.0, got 2.5",
            "student.max_tokens must be between 0 (no cap) and 32768, got 40000",
            "student.max_retries must be between 0 and 10, got 11",
            "teacher.max_tokens must be 0 (no cap) or at least 32 (an answer needs room), got 5",
            "source.fps must be above 0 and at most 120, got 0",
            "source.path must name an image file when source.kind = \"file\"",
            "source.min_change must be between 0.0 and 1.0, got 1.5",
            "notify.webhook must start with http:// or https://, got \"mailto:x\"",
            "device.name must not be empty",
            "frame.max_side must be between 32 and 4096, got 10",
            "frame.jpeg_quality must be between 1 and 100, got 0",
            "policy.confidence_threshold must be between 0.0 and 1.0, got NaN",
            "policy.safety_keywords must not contain an empty word",
            "policy.storm_share must be between 0.0 (off) and 1.0, got -0.5",
            "policy.teacher_queue must be between 1 and 1000, got 0",
            "upskill.candidates must be between 1 and 32, got 33",
            "upskill.concurrency must be between 1 and 64, got 0",
            "upskill.min_improvement must be between 0.0 and 1.0, got 2",
            "upskill.max_prompt_chars must be at least 20, got 19",
            "upskill.bootstrap_samples must be between 10 and 100000, got 9",
            "eval.temperature must be between 0.0 and 2.0, got 3",
            "console.history must be between 10 and 100000, got 100001",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn defaults_are_valid_and_a_folder_needs_a_path() {
        let mut c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        c.source.kind = SourceKind::Folder;
        assert_eq!(
            c.validate().unwrap_err(),
            ["source.path must name a folder of images when source.kind = \"folder\""]
        );
        c.source.path = "photos".into();
        c.student.max_tokens = 0;
        c.teacher.max_tokens = 32;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn camera_mode_is_a_size_or_empty() {
        let mut c = Config::default();
        c.source.camera_mode = "1280x720".into();
        assert_eq!(c.validate(), Ok(()));
        c.source.camera_mode = "720p".into();
        let e = c.validate().unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("source.camera_mode must be WIDTHxHEIGHT like \"1280x720\""),
            "{e:?}"
        );
    }
}
