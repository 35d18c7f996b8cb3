//! `[mqtt]`: the broker this device reports to (off unless `url` is set), its defaults,
//! and the validation `Config::validate` runs. The password is never shown.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The broker connection and the topics (`<topic_prefix>/<device name>/…`).
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host:1883` or `mqtts://host:8883`; empty = no MQTT (the default).
    pub url: String,
    pub username: String,
    /// Never logged, never shown by `check`, never in Debug output.
    #[serde(skip_serializing)]
    pub password: String,
    /// First topic level: `<topic_prefix>/<device>/events`, …
    pub topic_prefix: String,
    /// Home Assistant discovery prefix; empty = no discovery messages.
    pub discovery_prefix: String,
    /// PEM file with the CA that signed the broker's certificate (a private CA);
    /// empty = the public web roots.
    pub ca_file: PathBuf,
    /// Messages kept while the broker is away; beyond it the oldest is dropped (counted).
    pub buffer_messages: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: String::new(),
            username: String::new(),
            password: String::new(),
            topic_prefix: "gemmaedge".into(),
            discovery_prefix: "homeassistant".into(),
            ca_file: PathBuf::new(),
            buffer_messages: 1000,
        }
    }
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() {
                    "(none)"
                } else {
                    "(set, not shown)"
                },
            )
            .field("topic_prefix", &self.topic_prefix)
            .field("discovery_prefix", &self.discovery_prefix)
            .field("ca_file", &self.ca_file)
            .field("buffer_messages", &self.buffer_messages)
            .finish()
    }
}

impl MqttConfig {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

/// Where the broker is, read from `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `mqtt://host[:port]` (1883) or `mqtts://host[:port]` (8883); IPv6 in brackets.
pub fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let url = url.trim();
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(format!(
            "mqtt.url must start with mqtt:// or mqtts://, got {url:?}"
        ));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('@') {
        return Err(
            "mqtt.url must not carry a user or password: set [mqtt] username and password instead"
                .into(),
        );
    }
    if rest.contains('/') || rest.contains('?') {
        return Err(format!(
            "mqtt.url is a broker address (scheme, host, port), not a path: got {url:?}"
        ));
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, tail) = v6
            .split_once(']')
            .ok_or_else(|| format!("mqtt.url has an unclosed IPv6 bracket: {url:?}"))?;
        match tail.strip_prefix(':') {
            Some(p) => (h.to_string(), Some(p)),
            None if tail.is_empty() => (h.to_string(), None),
            None => return Err(format!("mqtt.url: unexpected {tail:?} after the host")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("mqtt.url names no host: {url:?}"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("mqtt.url port must be 1-65535, got {p:?}"))?,
    };
    Ok(BrokerUrl { tls, host, port })
}

/// Why `s` cannot be one topic level (None when it can).
pub fn bad_topic_level(s: &str) -> Option<String> {
    if s.is_empty() {
        Some("it is empty".into())
    } else if s.contains('/') {
        Some("it contains '/'".into())
    } else if s.contains('+') || s.contains('#') {
        Some("it contains an MQTT wildcard ('+' or '#')".into())
    } else if let Some(why) = invisible_in_name(s) {
        Some(why)
    } else if s.len() > 128 {
        Some("it is longer than 128 bytes".into())
    } else {
        None
    }
}

/// Why a name someone reads (a device name, a topic prefix) would mislead: a control
/// character, or an invisible format character (Unicode Cf: `kitchen\u{200b}` shows as
/// `kitchen`, a second device with the same look). None when it has neither.
pub fn invisible_in_name(s: &str) -> Option<String> {
    let c = s.chars().find(|c| {
        c.is_control()
            || crate::reading::sanitize::is_invisible_format(*c)
            || matches!(c, '\u{2028}' | '\u{2029}')
    })?;
    Some(if c.is_control() {
        format!("it contains a control character (U+{:04X})", c as u32)
    } else {
        format!(
            "it contains an invisible format character (U+{:04X}) that would make it look like another name",
            c as u32
        )
    })
}

/// Every problem of `[mqtt]` (nothing when it is off), each with what to change.
pub fn validate(m: &MqttConfig, device_name: &str) -> Vec<String> {
    let mut p = Vec::new();
    if !m.enabled() {
        return p;
    }
    let url = match parse_url(&m.url) {
        Ok(u) => Some(u),
        Err(e) => {
            p.push(e);
            None
        }
    };
    if let Some(why) = bad_topic_level(device_name) {
        p.push(format!(
            "device.name {device_name:?} is this device's MQTT client id and topic level, but \
             {why}: rename it in [device] name"
        ));
    }
    let prefix = m.topic_prefix.as_str();
    if prefix.is_empty()
        || prefix.starts_with('/')
        || prefix.ends_with('/')
        || prefix.starts_with('$')
        || prefix.contains("//")
        || prefix.split('/').any(|l| bad_topic_level(l).is_some())
    {
        p.push(format!(
            "mqtt.topic_prefix must be topic levels separated by '/', without wildcards, \
             leading '$', empty levels, control or invisible characters (e.g. \"gemmaedge\"), \
             got {prefix:?}"
        ));
    }
    let disc = m.discovery_prefix.as_str();
    if !disc.is_empty() && disc.split('/').any(|l| bad_topic_level(l).is_some()) {
        p.push(format!(
            "mqtt.discovery_prefix must be empty (no discovery) or topic levels without \
             wildcards, control or invisible characters (e.g. \"homeassistant\"), got {disc:?}"
        ));
    }
    if !m.password.is_empty() && m.username.is_empty() {
        p.push("mqtt.password is set but mqtt.username is empty: set both or neither".into());
    }
    if !m.ca_file.as_os_str().is_empty() && url.as_ref().is_some_and(|u| !u.tls) {
        p.push(
            "mqtt.ca_file is only used with TLS: make mqtt.url mqtts://… or remove ca_file".into(),
        );
    }
    if !(10..=100_000).contains(&m.buffer_messages) {
        p.push(format!(
            "mqtt.buffer_messages must be between 10 and 100000, got {}",
            m.buffer_messages
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_refused_in_names_and_prefixes() {
        let m = MqttConfig {
            url: "mqtt://b:1883".into(),
            topic_prefix: "gemma\u{200b}edge".into(),
            discovery_prefix: "home\u{2066}assistant".into(),
            ..Default::default()
        };
        let p = validate(&m, "kitchen\u{200b}").join("\n");
        assert!(p.contains("device.name") && p.contains("U+200B"), "{p}");
        assert!(p.contains("mqtt.topic_prefix"), "{p}");
        assert!(p.contains("mqtt.discovery_prefix"), "{p}");
        assert!(validate(&m, "kitchen\u{200b}").len() == 3, "{p}");
        assert!(invisible_in_name("厨房").is_none());
        assert!(invisible_in_name("pi\u{7f}").unwrap().contains("control"));
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://broker.lan").unwrap(),
            BrokerUrl {
                tls: false,
                host: "broker.lan".into(),
                port: 1883
            }
        );
        let u = parse_url("mqtts://[::1]:9000").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "::1", 9000));
        assert_eq!(u.to_string(), "mqtts://[::1]:9000");
        assert_eq!(parse_url("mqtts://h").unwrap().port, 8883);
        assert!(parse_url("http://h").is_err());
        assert!(parse_url("mqtt://u:pw@h").unwrap_err().contains("username"));
        assert!(parse_url("mqtt://h:0").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
    }

    #[test]
    fn off_by_default_and_checked_when_on() {
        let d = MqttConfig::default();
        assert!(!d.enabled());
        assert!(validate(&d, "a/b").is_empty());
        let m = MqttConfig {
            url: "mqtt://h".into(),
            password: "pw".into(),
            topic_prefix: "a/+".into(),
            ca_file: "ca.pem".into(),
            ..d
        };
        let p = validate(&m, "kitchen/pi").join("\n");
        assert!(p.contains("[device] name"), "{p}");
        assert!(p.contains("mqtt.topic_prefix"), "{p}");
        assert!(p.contains("mqtt.username is empty"), "{p}");
        assert!(p.contains("mqtt.ca_file"), "{p}");
    }

    #[test]
    fn config_validation_runs_it() {
        let parse = |t: &str| crate::config::Config::parse_str(t, std::path::Path::new("c.toml"));
        let c = parse("[device]\nname = \"pi\"\n[mqtt]\nurl = \"mqtt://b\"\n").unwrap();
        assert_eq!(c.mqtt.topic_prefix, "gemmaedge");
        assert_eq!(c.mqtt.discovery_prefix, "homeassistant");
        let e = parse("[mqtt]\nurl = \"http://b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mqtt.url must start with mqtt:// or mqtts://"),
            "{e}"
        );
        let e = parse("[mqtt]\nurll = \"mqtt://b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `url`"), "{e}");
        assert!(!parse("").unwrap().mqtt.enabled());
    }

    #[test]
    fn the_password_never_shows() {
        let m = MqttConfig {
            password: "hunter2".into(),
            ..MqttConfig::default()
        };
        let d = format!("{m:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("not shown"));
        let t = toml::to_string(&m).unwrap();
        assert!(!t.contains("hunter2"), "{t}");
        let c = crate::config::Config {
            mqtt: m,
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
