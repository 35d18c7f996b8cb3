//! The one backoff policy: exponential delays (base, 2·base, 4·base … up to a cap) with
//! jitter, as a pure function of the attempt and a noise sample, and the schedules the
//! crate uses (servers, the camera reopen; an MQTT reconnect takes one too).

use std::time::{Duration, SystemTime};

/// How the delay is spread so that many waiters do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// ±this share of the delay, never past the cap (a server many devices may share).
    Around(f64),
    /// Up to this share added on top, cap included: the wait is never shorter than the
    /// delay a message names ("retrying in 2s").
    Over(f64),
}

/// Exponential backoff: attempt 1 waits `base`, each further attempt twice as long, up
/// to `cap`; then jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub jitter: Jitter,
}

/// Retrying a model server (offline, or failing permanently) or the MQTT broker: 1, 2,
/// 4 … 30 s, ±20%.
pub const SERVER: Backoff = Backoff {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(30),
    jitter: Jitter::Around(0.2),
};

/// Reopening a lost camera: 1, 2, 4 … 30 s, plus up to 10%.
pub const CAMERA_REOPEN: Backoff = Backoff {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(30),
    jitter: Jitter::Over(0.1),
};

impl Backoff {
    /// The delay before `attempt` (1 = the first retry) without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The delay before `attempt`, jittered by `noise` (a sample in 0..1: 0 is the
    /// shortest wait the jitter allows, 1 the longest).
    pub fn delay_with(&self, attempt: u32, noise: f64) -> Duration {
        let nominal = self.nominal(attempt);
        let noise = if noise.is_finite() {
            noise.clamp(0.0, 1.0)
        } else {
            0.5
        };
        match self.jitter {
            Jitter::Around(share) => nominal
                .mul_f64((1.0 + share * (2.0 * noise - 1.0)).max(0.0))
                .min(self.cap),
            Jitter::Over(share) => nominal + nominal.mul_f64(share.max(0.0) * noise),
        }
    }

    /// The delay before `attempt`, jittered by the clock's low bits (no RNG needed for
    /// de-synchronising).
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, clock_noise())
    }
}

/// A sample in 0..1 from the clock's nanoseconds.
fn clock_noise() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    // Mix the bits: some clocks tick in whole microseconds.
    let x = nanos ^ (nanos >> 10) ^ (nanos >> 20);
    f64::from(x % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_from_the_base_up_to_the_cap() {
        let secs: Vec<u64> = (1..=7).map(|a| SERVER.nominal(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(SERVER.nominal(0), Duration::from_secs(1));
        assert_eq!(SERVER.nominal(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_around_spreads_both_ways_and_never_passes_the_cap() {
        assert_eq!(SERVER.delay_with(1, 0.0), MS(800));
        assert_eq!(SERVER.delay_with(1, 0.5), MS(1000));
        assert_eq!(SERVER.delay_with(1, 1.0), MS(1200));
        assert_eq!(SERVER.delay_with(3, 0.0), MS(3200));
        assert_eq!(SERVER.delay_with(20, 0.0), Duration::from_secs(24));
        assert_eq!(SERVER.delay_with(20, 1.0), Duration::from_secs(30));
    }

    #[test]
    fn jitter_over_only_adds() {
        assert_eq!(CAMERA_REOPEN.delay_with(1, 0.0), MS(1000));
        assert_eq!(CAMERA_REOPEN.delay_with(2, 1.0), MS(2200));
        assert_eq!(CAMERA_REOPEN.delay_with(9, 1.0), Duration::from_secs(33));
    }

    #[test]
    fn clock_jittered_delays_stay_in_their_range() {
        for _ in 0..100 {
            let d = SERVER.delay(1);
            assert!(d >= MS(800) && d <= MS(1200), "{d:?}");
            let d = CAMERA_REOPEN.delay(1);
            assert!(d >= MS(1000) && d < MS(1100), "{d:?}");
        }
        let n = clock_noise();
        assert!((0.0..1.0).contains(&n));
    }

    #[test]
    fn odd_noise_is_clamped() {
        assert_eq!(SERVER.delay_with(1, -3.0), MS(800));
        assert_eq!(SERVER.delay_with(1, f64::NAN), MS(1000));
    }
}
