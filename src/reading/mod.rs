//! Reading what models say: confidence lines, prompt echoes, JSON in prose, words and sanitising.
//!
//! Plain functions over untrusted text; nothing here knows a model, the engine or a face.

pub mod confidence;
pub mod echo;
pub mod json_extract;
pub mod sanitize;
pub mod text;
