//! The connection to the broker: client options (TLS with rustls and ring, credentials,
//! last will), the task that drives the client and reconnects with backoff, and what a
//! connection error means for the user.

use super::config::{parse_url, BrokerUrl, MqttConfig};
use super::outbox::Msg;
use rumqttc::{
    ConnectReturnCode, ConnectionError, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    Request, Transport,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How the broker connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Connecting,
    Connected,
    /// Nothing listens there (connection refused) or the broker went away.
    Down,
    /// No answer: a wrong host, no route, a timeout, a TLS failure.
    Unreachable,
    /// The broker answered and said no (credentials, client id).
    Refused,
    /// The bridge stopped.
    Stopped,
}

impl LinkState {
    pub fn label(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting…",
            LinkState::Connected => "connected",
            LinkState::Down => "down",
            LinkState::Unreachable => "unreachable",
            LinkState::Refused => "refused",
            LinkState::Stopped => "stopped",
        }
    }
}

/// What a face shows about the broker (serialised like an event: `{"type":"broker",…}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "broker")]
pub struct BrokerStatus {
    /// `mqtt(s)://host:port` (never a password).
    pub url: String,
    pub state: LinkState,
    /// Why, and the fix, when not connected.
    pub detail: String,
    /// Messages waiting for the broker.
    pub buffered: usize,
    /// Messages dropped from the full buffer, plus events the bridge could not take.
    pub dropped: u64,
}

impl BrokerStatus {
    /// Short text for a status bar: `mqtt connected`, `mqtt down (12 waiting, 3 dropped)`.
    pub fn label(&self) -> String {
        let mut s = format!("mqtt {}", self.state.label());
        let mut extra = Vec::new();
        if self.buffered > 0 {
            extra.push(format!("{} waiting", self.buffered));
        }
        if self.dropped > 0 {
            extra.push(format!("{} dropped", self.dropped));
        }
        if !extra.is_empty() {
            s.push_str(&format!(" ({})", extra.join(", ")));
        }
        s
    }
}

/// Keep-alive ping interval (the broker sends the last will after 1.5× without a packet).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The root certificates: `ca_file` when set, else the public web roots.
fn tls_config(m: &MqttConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if m.ca_file.as_os_str().is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        let pem =
            crate::files::bounded_read::read_regular(&m.ca_file, 1024 * 1024).map_err(|e| {
                format!(
                    "cannot read mqtt.ca_file {}: {e}: fix [mqtt] ca_file",
                    m.ca_file.display()
                )
            })?;
        let mut n = 0;
        for cert in rustls_pemfile_certs(&pem) {
            if roots.add(cert).is_ok() {
                n += 1;
            }
        }
        if n == 0 {
            return Err(format!(
                "mqtt.ca_file {} holds no PEM certificate: point [mqtt] ca_file at the CA's .pem/.crt",
                m.ca_file.display()
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The certificates of a PEM text.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// Client options for `client_id`; `will` = `(topic, payload)` sent by the broker when
/// the connection is lost without a clean stop.
pub fn options(
    m: &MqttConfig,
    client_id: &str,
    will: Option<(String, &str)>,
) -> Result<(MqttOptions, BrokerUrl), String> {
    let url = parse_url(&m.url)?;
    let mut o = MqttOptions::new(client_id, url.host.clone(), url.port);
    o.set_keep_alive(KEEP_ALIVE);
    o.set_clean_session(true);
    o.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
    if !m.username.is_empty() {
        o.set_credentials(m.username.clone(), m.password.clone());
    }
    if let Some((topic, payload)) = will {
        o.set_last_will(LastWill::new(topic, payload, QoS::AtLeastOnce, true));
    }
    if url.tls {
        o.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config(m)?)),
        ));
    }
    Ok((o, url))
}

/// What a connection error means, and what to do about it.
pub fn classify(e: &ConnectionError, m: &MqttConfig, url: &BrokerUrl) -> (LinkState, String) {
    let user = if m.username.is_empty() {
        "(no user)".to_string()
    } else {
        format!("user {:?}", m.username)
    };
    match e {
        ConnectionError::ConnectionRefused(code) => {
            let detail = match code {
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                    if m.username.is_empty() =>
                {
                    format!("{url} wants a user name and password: set [mqtt] username/password")
                }
                ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => {
                    format!(
                        "{url} refused the credentials for {user}: check [mqtt] username/password"
                    )
                }
                ConnectReturnCode::BadClientId => {
                    format!("{url} refused the client id (the device name): change [device] name")
                }
                ConnectReturnCode::ServiceUnavailable => {
                    format!("{url} says it is unavailable: retrying")
                }
                other => format!("{url} refused the connection ({other:?})"),
            };
            (LinkState::Refused, detail)
        }
        ConnectionError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => (
            LinkState::Down,
            format!(
                "nothing listens on {url} (connection refused): start the broker \
                 (systemctl start mosquitto) or fix [mqtt] url"
            ),
        ),
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => (
            LinkState::Unreachable,
            format!("no answer from {url}: check [mqtt] url and the network"),
        ),
        ConnectionError::Tls(t) => (
            LinkState::Unreachable,
            format!(
                "TLS with {url} failed: {t}: set [mqtt] ca_file to the CA that signed the \
                 broker's certificate, and use the host name the certificate names"
            ),
        ),
        ConnectionError::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            (
                LinkState::Down,
                format!("{url} closed the connection ({io}): reconnecting"),
            )
        }
        ConnectionError::Io(io) => (
            LinkState::Unreachable,
            format!("cannot reach {url}: {io}: check [mqtt] url and the network"),
        ),
        ConnectionError::MqttState(s) => (
            LinkState::Down,
            format!("connection to {url} lost ({s}): reconnecting"),
        ),
        other => (LinkState::Down, format!("{url}: {other}")),
    }
}

/// Reconnect delay after `attempt` failures: the one backoff policy (1, 2, 4 … 30 s, ±20%).
pub(crate) fn retry_delay(attempt: u32) -> Duration {
    crate::model::backoff::SERVER.delay(attempt.max(1))
}

/// What the link task reports.
pub(super) enum Link {
    Connected,
    Message(rumqttc::Publish),
    Down {
        state: LinkState,
        detail: String,
        /// Messages the client had taken but not delivered.
        returned: Vec<Msg>,
        retry_in: Duration,
    },
    Closed,
}

/// Drive the MQTT client: connect, read, and after a failure wait (1, 2, 4 … 30 s).
pub(super) async fn link_loop(
    mut el: EventLoop,
    m: MqttConfig,
    url: BrokerUrl,
    tx: mpsc::UnboundedSender<Link>,
) {
    let mut failures = 0u32;
    loop {
        let polled = el.poll().await;
        let sent = match polled {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                tx.send(Link::Connected)
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => tx.send(Link::Message(p)),
            Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) => {
                let _ = tx.send(Link::Closed);
                return;
            }
            Ok(_) => Ok(()),
            Err(e) => {
                failures += 1;
                let (state, detail) = classify(&e, &m, &url);
                let returned = el
                    .pending
                    .drain(..)
                    .filter_map(|r| match r {
                        Request::Publish(p) => {
                            Some(Msg::new(p.topic, p.payload.to_vec(), p.retain))
                        }
                        _ => None,
                    })
                    .collect();
                let retry_in = retry_delay(failures);
                let sent = tx.send(Link::Down {
                    state,
                    detail,
                    returned,
                    retry_in,
                });
                tokio::time::sleep(retry_in).await;
                sent
            }
        };
        if sent.is_err() {
            return; // the bridge has gone
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_30s() {
        assert!(retry_delay(1) <= Duration::from_millis(1200));
        assert!(retry_delay(3) >= Duration::from_millis(3190));
        assert!(retry_delay(20) <= Duration::from_secs(30));
        assert!(retry_delay(20) >= Duration::from_secs(23));
    }

    #[test]
    fn refused_credentials_name_the_user_and_the_fix() {
        let m = MqttConfig {
            url: "mqtt://b:1883".into(),
            username: "pi".into(),
            password: "secret".into(),
            ..Default::default()
        };
        let url = parse_url(&m.url).unwrap();
        let (s, d) = classify(
            &ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized),
            &m,
            &url,
        );
        assert_eq!(s, LinkState::Refused);
        assert!(d.contains("user \"pi\"") && d.contains("[mqtt] username/password"));
        assert!(!d.contains("secret"));
        let (s, _) = classify(
            &ConnectionError::Io(std::io::ErrorKind::ConnectionRefused.into()),
            &m,
            &url,
        );
        assert_eq!(s, LinkState::Down);
    }

    #[test]
    fn status_label() {
        let s = BrokerStatus {
            url: "mqtt://b:1883".into(),
            state: LinkState::Down,
            detail: String::new(),
            buffered: 12,
            dropped: 3,
        };
        assert_eq!(s.label(), "mqtt down (12 waiting, 3 dropped)");
        let j = serde_json::to_string(&s).unwrap();
        assert!(j.starts_with(r#"{"type":"broker","url":"#), "{j}");
    }
}
