//! Paired bootstrap of a candidate's improvement over the baseline, resampling cases.
//!
//! Each resample draws `n` case indices with replacement and takes the weighted mean of
//! `candidate[i] - baseline[i]` over them; the interval is the `(1-level)/2` and
//! `1-(1-level)/2` percentiles (linear interpolation) of those means. Pairing keeps a
//! case's difficulty out of the comparison. The RNG is a splitmix64 seeded by the caller,
//! so a run is reproducible.

use super::score::weighted_mean;

/// Mean improvement and its interval at `level` (e.g. 0.90).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Tiny deterministic PRNG (splitmix64); good enough for resampling, no crate needed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), by multiply-shift (bias below 2^-32 for small n).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// `baseline[i]`, `candidate[i]`, `weights[i]` belong to case i. Deterministic for a seed.
///
/// Slices of different lengths are cut to the shortest. Empty input gives all zeros;
/// `samples == 0` gives an interval collapsed on the mean. `level` is clamped to [0, 1].
pub fn improvement_interval(
    baseline: &[f64],
    candidate: &[f64],
    weights: &[f64],
    samples: usize,
    level: f64,
    seed: u64,
) -> Interval {
    let n = baseline.len().min(candidate.len()).min(weights.len());
    if n == 0 {
        return Interval {
            mean: 0.0,
            lo: 0.0,
            hi: 0.0,
        };
    }
    let diffs: Vec<(f64, f64)> = (0..n)
        .map(|i| (candidate[i] - baseline[i], weights[i]))
        .collect();
    let mean = weighted_mean(&diffs);
    if samples == 0 {
        return Interval {
            mean,
            lo: mean,
            hi: mean,
        };
    }
    let mut rng = SplitMix64::new(seed);
    let mut resample = Vec::with_capacity(n);
    let mut means: Vec<f64> = (0..samples)
        .map(|_| {
            resample.clear();
            resample.extend((0..n).map(|_| diffs[rng.below(n)]));
            weighted_mean(&resample)
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let level = if level.is_nan() {
        0.0
    } else {
        level.clamp(0.0, 1.0)
    };
    let tail = (1.0 - level) / 2.0;
    Interval {
        mean,
        lo: percentile(&means, tail),
        hi: percentile(&means, 1.0 - tail),
    }
}

/// Percentile `p` in [0, 1] of sorted, non-empty `v`, by linear interpolation.
fn percentile(v: &[f64], p: f64) -> f64 {
    let pos = p * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    v[lo] + (v[hi] - v[lo]) * frac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn empty_input_is_all_zeros() {
        let i = improvement_interval(&[], &[], &[], 1000, 0.9, 1);
        assert_eq!(
            i,
            Interval {
                mean: 0.0,
                lo: 0.0,
                hi: 0.0
            }
        );
    }

    #[test]
    fn identical_scores_give_zero_interval() {
        let s = [0.2, 0.5, 0.9, 0.4];
        let i = improvement_interval(&s, &s, &[1.0; 4], 500, 0.9, 7);
        assert_eq!((i.mean, i.lo, i.hi), (0.0, 0.0, 0.0));
    }

    #[test]
    fn uniform_improvement_is_exact() {
        let b = [0.2, 0.5, 0.7, 0.3, 0.1];
        let c: Vec<f64> = b.iter().map(|x| x + 0.1).collect();
        let i = improvement_interval(&b, &c, &[1.0, 2.0, 1.0, 0.5, 3.0], 500, 0.9, 3);
        assert!(
            close(i.mean, 0.1) && close(i.lo, 0.1) && close(i.hi, 0.1),
            "{i:?}"
        );
    }

    #[test]
    fn mixed_differences_bracket_the_mean() {
        let b = [0.5; 10];
        let c = [0.9, 0.3, 0.7, 0.6, 0.2, 0.8, 0.5, 0.9, 0.4, 0.7];
        let i = improvement_interval(&b, &c, &[1.0; 10], 2000, 0.9, 42);
        assert!(close(i.mean, 0.1), "{i:?}");
        assert!(i.lo < i.mean && i.mean < i.hi, "{i:?}");
        assert!(i.lo > -0.4 && i.hi < 0.4, "{i:?}");
        // A wider level gives a wider interval.
        let w = improvement_interval(&b, &c, &[1.0; 10], 2000, 0.99, 42);
        assert!(w.lo <= i.lo && w.hi >= i.hi, "{w:?} vs {i:?}");
    }

    #[test]
    fn weights_shape_the_mean() {
        let b = [0.0, 0.0];
        let c = [1.0, 0.0];
        let i = improvement_interval(&b, &c, &[3.0, 1.0], 100, 0.9, 1);
        assert!(close(i.mean, 0.75));
        let i = improvement_interval(&b, &c, &[0.0, 0.0], 100, 0.9, 1);
        assert_eq!((i.mean, i.lo, i.hi), (0.0, 0.0, 0.0));
    }

    #[test]
    fn same_seed_same_result_other_seed_differs() {
        let b = [0.1, 0.4, 0.6, 0.2, 0.8, 0.3];
        let c = [0.3, 0.2, 0.9, 0.2, 0.7, 0.6];
        let w = [1.0; 6];
        let a1 = improvement_interval(&b, &c, &w, 300, 0.9, 99);
        let a2 = improvement_interval(&b, &c, &w, 300, 0.9, 99);
        assert_eq!(a1, a2);
        // Another seed draws other resamples (the interval itself may coincide, as
        // resample means of few cases take few distinct values).
        let mut r1 = SplitMix64::new(99);
        let mut r2 = SplitMix64::new(100);
        assert!((0..10).any(|_| r1.next_u64() != r2.next_u64()));
    }

    #[test]
    fn zero_samples_collapse_on_mean() {
        let i = improvement_interval(&[0.0, 0.0], &[0.2, 0.4], &[1.0, 1.0], 0, 0.9, 1);
        assert!(close(i.mean, 0.3) && close(i.lo, 0.3) && close(i.hi, 0.3));
    }

    #[test]
    fn splitmix_is_stable_and_in_range() {
        // Reference value of splitmix64 with seed 0 (first output).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let mut r = SplitMix64::new(5);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let k = r.below(7);
            assert!(k < 7);
            seen[k] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
