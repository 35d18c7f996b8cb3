//! One connection attempt, for `check`: connected, or which failure with its fix.

use super::link::{classify, options, LinkState};
use crate::config::Config;
use rumqttc::{AsyncClient, Packet};
use std::time::Duration;

/// How long `check` waits for the broker.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(6);

/// Connect once (with a client id of its own, so a running service is not kicked off)
/// and disconnect. Ok: what was reached; Err: the state and the reason with its fix.
pub async fn probe(config: &Config) -> Result<String, (LinkState, String)> {
    let m = &config.mqtt;
    let id = format!("{}-check-{}", config.device.name, std::process::id());
    let (opts, url) = options(m, &id, None).map_err(|e| (LinkState::Refused, e))?;
    let (client, mut el) = AsyncClient::new(opts, 4);
    let attempt = async {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(classify(&e, m, &url)),
            }
        }
    };
    let r = match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err((
            LinkState::Unreachable,
            format!(
                "no answer from {url} within {} s: check [mqtt] url and the network",
                PROBE_TIMEOUT.as_secs()
            ),
        )),
    };
    if r.is_ok() {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), el.poll()).await;
    }
    r?;
    let user = if m.username.is_empty() {
        "anonymous".to_string()
    } else {
        format!("as {}", m.username)
    };
    Ok(format!(
        "{url} connected ({user}); topics {}/{}/…{}",
        m.topic_prefix,
        config.device.name,
        if m.discovery_prefix.is_empty() {
            String::new()
        } else {
            format!(", Home Assistant discovery under {}/", m.discovery_prefix)
        }
    ))
}
