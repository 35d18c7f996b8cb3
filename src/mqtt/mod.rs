//! MQTT: this device's alerts, events, snapshot and state on a broker (for a fleet
//! console and Home Assistant), and commands from it. Off unless `[mqtt] url` is set.
//!
//! A face starts a [`Bridge`] next to the engine and hands it every event
//! ([`BridgeHandle::send`] never waits); the bridge owns the connection, the bounded
//! buffer and the reconnects, so a broker that is down never slows monitoring.

pub mod bridge;
pub mod config;
pub mod discovery;
pub mod incidents;
pub mod link;
pub mod outbox;
pub mod payload;
pub mod probe;
pub mod skill_info;
pub mod topics;
pub mod watches;

pub use bridge::{Bridge, BridgeHandle};
pub use config::MqttConfig;
pub use link::{BrokerStatus, LinkState};
