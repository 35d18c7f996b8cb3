//! The engine as an always-on service with attachable consoles.
//!
//! `hub` owns the engine, the upskill runner and the attached clients (each with a
//! bounded queue and a resync when it falls behind); `server` puts the hub on a Unix
//! socket (`socket`: its path, permissions, peer check and stale-file recovery);
//! `client` attaches a console to it; `protocol` is the wire format and `recorder` what
//! a console attaching late is sent first; `store_requests` answers history requests
//! (pages, an incident's detail, frames, the away summary) off the engine's threads.

pub mod attach;
pub mod client;
pub mod evals;
pub mod hub;
pub mod lines;
pub mod protocol;
pub mod recorder;
pub mod server;
pub mod socket;
pub mod store_requests;
