//! Topic names: `<prefix>/<device>/available|events|alert|snapshot|state|cmd/…`.

/// The topics of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    pub base: String,
}

/// What a message on a `cmd/…` topic asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Escalate,
    Pause,
    Resume,
    /// Acknowledge an open incident (payload: its id; anything else: every open one).
    Ack,
}

impl Topics {
    pub fn new(prefix: &str, device: &str) -> Self {
        Topics {
            base: format!("{prefix}/{device}"),
        }
    }
    pub fn available(&self) -> String {
        format!("{}/available", self.base)
    }
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }
    pub fn alert(&self) -> String {
        format!("{}/alert", self.base)
    }
    /// Retained `ON` / `OFF`: does a confirmed safety alert stand (the alert binary
    /// sensor's state; the alerts themselves are events on [`alert`](Self::alert)).
    pub fn alert_state(&self) -> String {
        format!("{}/alert_state", self.base)
    }
    pub fn snapshot(&self) -> String {
        format!("{}/snapshot", self.base)
    }
    pub fn state(&self) -> String {
        format!("{}/state", self.base)
    }
    /// Retained: the open incidents and the highest open level.
    pub fn incident(&self) -> String {
        format!("{}/incident", self.base)
    }
    /// Retained `ON` / `OFF` / `unknown`: watch `id`'s state (its binary sensor's).
    pub fn watch(&self, id: &str) -> String {
        format!("{}/watch/{}", self.base, slug(id))
    }
    pub fn cmd(&self, c: Cmd) -> String {
        format!(
            "{}/cmd/{}",
            self.base,
            match c {
                Cmd::Escalate => "escalate",
                Cmd::Pause => "pause",
                Cmd::Resume => "resume",
                Cmd::Ack => "ack",
            }
        )
    }
    /// The subscription for every command.
    pub fn cmd_filter(&self) -> String {
        format!("{}/cmd/+", self.base)
    }
    /// Which command a topic is, if it is one of ours.
    pub fn parse_cmd(&self, topic: &str) -> Option<Cmd> {
        match topic.strip_prefix(&self.base)?.strip_prefix("/cmd/")? {
            "escalate" => Some(Cmd::Escalate),
            "pause" => Some(Cmd::Pause),
            "resume" => Some(Cmd::Resume),
            "ack" => Some(Cmd::Ack),
            _ => None,
        }
    }
}

/// What a fleet topic (`<prefix>/<device>/<kind>`) is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetTopic<'a> {
    pub device: &'a str,
    pub kind: &'a str,
}

/// Split `<prefix>/<device>/<kind>` (kind one level: available, events, alert, state).
pub fn parse_fleet_topic<'a>(prefix: &str, topic: &'a str) -> Option<FleetTopic<'a>> {
    let rest = topic.strip_prefix(prefix)?.strip_prefix('/')?;
    let (device, kind) = rest.split_once('/')?;
    if device.is_empty() || kind.contains('/') {
        return None;
    }
    Some(FleetTopic { device, kind })
}

/// The fleet console's subscriptions.
pub fn fleet_filters(prefix: &str) -> Vec<String> {
    ["available", "state", "events", "alert", "incident"]
        .iter()
        .map(|k| format!("{prefix}/+/{k}"))
        .collect()
}

/// Home Assistant's birth and last-will topic (`online` / `offline`) under a discovery prefix.
pub fn ha_status(discovery_prefix: &str) -> String {
    format!("{discovery_prefix}/status")
}

/// A name usable in Home Assistant ids (`[a-zA-Z0-9_-]`).
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_topics_and_commands() {
        let t = Topics::new("home/ge", "pi-1");
        assert_eq!(t.available(), "home/ge/pi-1/available");
        assert_eq!(t.cmd(Cmd::Escalate), "home/ge/pi-1/cmd/escalate");
        assert_eq!(t.parse_cmd("home/ge/pi-1/cmd/pause"), Some(Cmd::Pause));
        assert_eq!(t.parse_cmd("home/ge/pi-2/cmd/pause"), None);
        assert_eq!(t.parse_cmd("home/ge/pi-1/cmd/reboot"), None);
        assert_eq!(
            parse_fleet_topic("home/ge", "home/ge/pi-1/state"),
            Some(FleetTopic {
                device: "pi-1",
                kind: "state"
            })
        );
        assert_eq!(parse_fleet_topic("home/ge", "home/ge/pi-1/cmd/x"), None);
        assert_eq!(slug("Küche pi.1"), "K_che_pi_1");
    }
}
