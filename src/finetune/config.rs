//! `[finetune]` in config.toml: when the console says fine-tuning is worth it.

use serde::{Deserialize, Serialize};

/// `[finetune]`: the thresholds of the readiness verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// Distinct teacher-labelled frames (after near-duplicate removal) wanted before
    /// fine-tuning is worth it (1–1000000).
    pub min_frames: u64,
    /// Prompting has stopped paying when this many finished upskill runs in a row each
    /// gained less than `upskill.min_improvement` (1–20).
    pub plateau_runs: usize,
    /// Two frames whose perceptual hashes differ in at most this many of 64 bits are one
    /// frame for counting and export (0–32; 0 = only identical hashes).
    pub duplicate_bits: u32,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            min_frames: 100,
            plateau_runs: 3,
            duplicate_bits: 4,
        }
    }
}

/// Problems with the section, for `Config::validate`.
pub fn validate(f: &FinetuneConfig) -> Vec<String> {
    let mut p = Vec::new();
    if !(1..=1_000_000).contains(&f.min_frames) {
        p.push(format!(
            "finetune.min_frames = {} is out of range: use 1 to 1000000",
            f.min_frames
        ));
    }
    if !(1..=20).contains(&f.plateau_runs) {
        p.push(format!(
            "finetune.plateau_runs = {} is out of range: use 1 to 20",
            f.plateau_runs
        ));
    }
    if f.duplicate_bits > 32 {
        p.push(format!(
            "finetune.duplicate_bits = {} is out of range: use 0 to 32 (of 64 bits)",
            f.duplicate_bits
        ));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_out_of_range_is_named() {
        assert!(validate(&FinetuneConfig::default()).is_empty());
        let bad = FinetuneConfig {
            min_frames: 0,
            plateau_runs: 21,
            duplicate_bits: 33,
        };
        let p = validate(&bad);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("finetune.min_frames = 0"));
    }
}
