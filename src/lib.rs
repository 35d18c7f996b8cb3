//! gemmaedge-tui: a terminal console for local edge vision.
//!
//! The engine (frames → student → policy → teacher → events) lives in this library and
//! knows nothing of the terminal. The console (`tui`), the headless mode and the CLI
//! subcommands are thin faces over it.

pub mod atomic;
pub mod backoff;
pub mod bounded_read;
pub mod calibration;
pub mod cli;
pub mod confidence;
pub mod config;
pub mod echo;
pub mod engine;
pub mod escalation_rate;
pub mod eval;
pub mod event;
pub mod fleet;
pub mod frame;
pub mod headless;
pub mod json_extract;
pub mod learn;
pub mod learn_console;
pub mod model;
pub mod mqtt;
pub mod notify;
pub mod output_contract;
pub mod policy;
pub mod sanitize;
pub mod scheduler;
pub mod service;
pub mod session_log;
pub mod skill;
pub mod student;
pub mod teacher;
pub mod teacher_queue;
pub mod text;
pub mod toml_diag;
pub mod tui;
pub mod upskill;
pub mod verdict;
