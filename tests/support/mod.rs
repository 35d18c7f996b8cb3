//! Shared helpers for integration tests. Each test binary compiles this module on its own,
//! so helpers unused by one binary must not warn.
#![allow(dead_code)]

pub mod ollama_server;
pub mod openai_server;
