//! Messages from the broker: commands for the engine (escalate, pause, resume, ack),
//! Home Assistant's birth message, and what is skipped (oversize, retained commands).

use super::Run;
use crate::event::Command;
use crate::mqtt::topics::{ha_status, Cmd};
use std::time::{Duration, Instant};

impl Run {
    pub(super) fn on_message(&mut self, p: rumqttc::Publish) {
        // Over our limit (the client reads more, so the connection stays up): skipped,
        // counted in the state, said once.
        if p.payload.len() > crate::mqtt::link::MAX_COMMAND_PAYLOAD {
            self.state.counters.oversize_skipped += 1;
            self.state_dirty = true;
            if self.state.counters.oversize_skipped == 1 {
                let _ = self.notices.send(format!(
                    "mqtt: skipped a {} KB message on {} (commands are at most {} KB; counted \
                     in the state as oversize_skipped): cap messages with max_packet_size in \
                     the broker's config",
                    p.payload.len() / 1024,
                    crate::reading::sanitize::strip_controls(&p.topic),
                    crate::mqtt::link::MAX_COMMAND_PAYLOAD / 1024
                ));
            }
            return;
        }
        // Home Assistant (re)started: it has forgotten what it was told, say it again
        // (its documented birth-message convention).
        if !self.discovery_prefix.is_empty() && p.topic == ha_status(&self.discovery_prefix) {
            if p.payload.as_ref() == b"online" {
                self.rebirth_pending = true;
            }
            return;
        }
        // A retained command is an old one (someone published it with retain): ignore it.
        if p.retain {
            return;
        }
        let Some(cmd) = self.topics.parse_cmd(&p.topic) else {
            return;
        };
        let (command, what) = match cmd {
            Cmd::Escalate => (Command::ForceEscalate, "escalate"),
            Cmd::Pause => (Command::SetPaused(true), "pause"),
            Cmd::Resume => (Command::SetPaused(false), "resume"),
            Cmd::Ack => (
                Command::Ack {
                    // The payload names an incident by its id; anything else means all.
                    incident: std::str::from_utf8(&p.payload)
                        .ok()
                        .and_then(|s| s.trim().parse().ok()),
                    by: "mqtt".into(),
                },
                "acknowledge",
            ),
        };
        let now = Instant::now();
        match &mut self.command_said {
            Some((at, n)) if now.duration_since(*at) < Duration::from_secs(1) => *n += 1,
            _ => {
                let more = match self.command_said {
                    Some((_, n)) if n > 0 => format!(" ({n} more commands in the last second)"),
                    _ => String::new(),
                };
                self.command_said = Some((now, 0));
                let _ = self
                    .notices
                    .send(format!("mqtt: command from the broker: {what}{more}"));
            }
        }
        let _ = self.commands.send(command);
    }
}
