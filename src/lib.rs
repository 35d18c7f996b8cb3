//! gemmaedge-tui: a terminal console for local edge vision.
//!
//! The engine (frames → student → policy → teacher → events) lives in this library and
//! knows nothing of the terminal. The console (`tui`), the headless mode and the CLI
//! subcommands are thin faces over it.

pub mod cli;
pub mod config;
pub mod engine;
pub mod eval;
pub mod event;
pub mod files;
pub mod finetune;
pub mod fleet;
pub mod frame;
pub mod history;
pub mod hooks;
pub mod learn;
pub mod model;
pub mod mqtt;
pub mod policy;
pub mod reading;
pub mod record;
pub mod roles;
pub mod service;
pub mod tui;
pub mod upskill;
pub mod watch;
