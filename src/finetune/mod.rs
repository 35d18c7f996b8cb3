//! Fine-tuning the student, when prompting is not enough: whether it is worth it yet (readiness), and the training set written from the teacher's verdicts (export).
//!
//! `readiness.rs` is pure (labels, near-duplicates, plateau, the verdict in words);
//! `gather.rs` reads the history store and the upskill reports; `export.rs` writes the
//! dataset (`hf` image folder or LLaMA-Factory `sharegpt`) with its card and a Modelfile.
//! Sits below the faces: nothing here knows one.

pub mod card;
pub mod config;
pub mod example;
pub mod export;
pub mod gather;
pub mod readiness;

pub use config::FinetuneConfig;
