//! Paired bootstrap of a candidate's improvement over the baseline, resampling cases.
//! PLACEHOLDER body: replaced by the full implementation.

/// Mean improvement and its interval at `level` (e.g. 0.90).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

/// `baseline[i]`, `candidate[i]`, `weights[i]` belong to case i. Deterministic for a seed.
pub fn improvement_interval(
    baseline: &[f64],
    candidate: &[f64],
    weights: &[f64],
    samples: usize,
    level: f64,
    seed: u64,
) -> Interval {
    let _ = (samples, level, seed, weights);
    let n = baseline.len().max(1) as f64;
    let mean = candidate
        .iter()
        .zip(baseline)
        .map(|(c, b)| c - b)
        .sum::<f64>()
        / n;
    Interval {
        mean,
        lo: mean,
        hi: mean,
    }
}
