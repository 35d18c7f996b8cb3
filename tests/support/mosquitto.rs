//! A real Mosquitto for the MQTT tests: a generated config (127.0.0.1, an ephemeral port,
//! `allow_anonymous false`, a password file made with `mosquitto_passwd`, an ACL, TLS with
//! a CA and certificate generated at test time when asked), started with `mosquitto -c`,
//! killed on drop; plus a small subscriber that collects what it receives.
//!
//! Mosquitto missing is a failure naming `scripts/setup --tests`, not a skip.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";
const MOSQUITTO_PASSWD: &str = "/usr/bin/mosquitto_passwd";

fn tool(path: &str) -> PathBuf {
    let name = Path::new(path).file_name().unwrap();
    if Path::new(path).exists() {
        return PathBuf::from(path);
    }
    // Elsewhere on PATH?
    if let Ok(out) = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {}", name.to_string_lossy()))
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "{} is not installed: the MQTT tests run a real broker. Run scripts/setup --tests \
         (it installs the Debian package mosquitto)",
        name.to_string_lossy()
    );
}

/// A broker owned by one test.
pub struct Broker {
    dir: tempfile::TempDir,
    pub port: u16,
    pub tls: bool,
    child: Option<Child>,
}

impl Broker {
    /// Plain MQTT with these users (`name`, `password`) and ACL text (Mosquitto's format).
    pub fn start(users: &[(&str, &str)], acl: &str) -> Broker {
        Self::start_with(users, acl, false)
    }

    /// MQTT over TLS, with a CA and a server certificate for `localhost` and 127.0.0.1
    /// generated now (the CA is at [`Broker::ca_file`]).
    pub fn start_tls(users: &[(&str, &str)], acl: &str) -> Broker {
        Self::start_with(users, acl, true)
    }

    /// Configured but not started (a broker that is down): start it with [`Broker::restart`].
    pub fn configured(users: &[(&str, &str)], acl: &str) -> Broker {
        let mut b = Self::start_with(users, acl, false);
        b.stop();
        b
    }

    fn start_with(users: &[(&str, &str)], acl: &str, tls: bool) -> Broker {
        let mosquitto = tool(MOSQUITTO);
        let passwd_tool = tool(MOSQUITTO_PASSWD);
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("passwd");
        for (i, (user, pw)) in users.iter().enumerate() {
            let mut c = Command::new(&passwd_tool);
            c.arg("-b");
            if i == 0 {
                c.arg("-c");
            }
            let st = c
                .arg(&passwd)
                .arg(user)
                .arg(pw)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "mosquitto_passwd failed for {user}");
        }
        std::fs::write(dir.path().join("acl"), acl).unwrap();
        let port = free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\n\
             persistence false\nlog_dest file {}\nlog_type all\n",
            passwd.display(),
            dir.path().join("acl").display(),
            dir.path().join("broker.log").display(),
        );
        // As root Mosquitto would switch to the `mosquitto` user, who cannot read the tempdir.
        if unsafe_is_root() {
            conf.push_str("user root\n");
        }
        if tls {
            let (ca, cert, key) = make_certs(dir.path());
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                ca.display(),
                cert.display(),
                key.display()
            ));
        }
        std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
        let _ = mosquitto;
        let mut b = Broker {
            dir,
            port,
            tls,
            child: None,
        };
        b.restart();
        b
    }

    /// `mqtt://127.0.0.1:<port>`, or `mqtts://localhost:<port>` with TLS.
    pub fn url(&self) -> String {
        if self.tls {
            format!("mqtts://localhost:{}", self.port)
        } else {
            format!("mqtt://127.0.0.1:{}", self.port)
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default()
    }

    /// Kill it (like a crashed broker).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it (again, on the same port) and wait until the port accepts.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(tool(MOSQUITTO))
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("mosquitto exited ({st}); its log:\n{}", self.log());
                }
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {} within 10 s; its log:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn unsafe_is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a server certificate (localhost, 127.0.0.1) signed by it: (ca, cert, key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "gemmaedge test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (ca_p, cert_p, key_p) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca_p, ca_cert.pem()).unwrap();
    std::fs::write(&cert_p, cert.pem()).unwrap();
    std::fs::write(&key_p, key.serialize_pem()).unwrap();
    (ca_p, cert_p, key_p)
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Got {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Got {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {}", self.topic, self.text()))
    }
}

/// A subscriber (rumqttc) that keeps everything it receives.
pub struct Sub {
    pub client: rumqttc::AsyncClient,
    got: Arc<Mutex<Vec<Got>>>,
    subscribed: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Sub {
    /// Connect as `user` and subscribe to `filters` (waits for the subscription; subscribes
    /// again after a reconnect).
    pub async fn connect(broker: &Broker, user: &str, pw: &str, filters: &[&str]) -> Sub {
        let mut o = rumqttc::MqttOptions::new(
            format!("test-sub-{user}-{}", rand_id()),
            if broker.tls { "localhost" } else { "127.0.0.1" },
            broker.port,
        );
        o.set_credentials(user, pw);
        o.set_max_packet_size(8 << 20, 8 << 20);
        if broker.tls {
            let pem = std::fs::read(broker.ca_file()).unwrap();
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(tls_client(&pem))),
            ));
        }
        let (client, mut el) = rumqttc::AsyncClient::new(o, 64);
        let got = Arc::new(Mutex::new(Vec::new()));
        let subscribed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let task = tokio::spawn({
            let got = got.clone();
            let client = client.clone();
            let subscribed = subscribed.clone();
            async move {
                let mut acks = 0;
                loop {
                    match el.poll().await {
                        // Clean sessions: subscribe again after every (re)connect.
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            acks = 0;
                            for f in &filters {
                                let _ = client.try_subscribe(f.clone(), rumqttc::QoS::AtLeastOnce);
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            acks += 1;
                            if acks == filters.len() {
                                subscribed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            got.lock().unwrap().push(Got {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                            })
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
        });
        let sub = Sub {
            client,
            got,
            subscribed,
            task,
        };
        sub.wait_subscribed(1).await;
        sub
    }

    /// Wait until the subscriptions were made `n` times (once per connection).
    pub async fn wait_subscribed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.subscribed.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "subscriber not subscribed ({n})");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    pub fn on(&self, topic: &str) -> Vec<Got> {
        self.all()
            .into_iter()
            .filter(|g| g.topic == topic)
            .collect()
    }

    /// Wait until `cond` holds on what was received (panics after `secs`).
    pub async fn wait_for(&self, secs: u64, what: &str, cond: impl Fn(&[Got]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if cond(&self.all()) {
                return;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self
                    .all()
                    .iter()
                    .map(|g| {
                        format!(
                            "{} {}",
                            g.topic,
                            g.text().chars().take(120).collect::<String>()
                        )
                    })
                    .collect();
                panic!(
                    "timed out waiting for {what}; received:\n{}",
                    seen.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn tls_client(ca_pem: &[u8]) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}
