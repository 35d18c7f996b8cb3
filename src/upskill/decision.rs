//! Choosing the winner: better on train by a margin, an improvement interval above zero,
//! and no fall on holdout. Pure.

use crate::eval::bootstrap::Interval;

/// A row's totals: row 0 is the current skill (baseline).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RowScore {
    pub train: Option<f64>,
    pub holdout: Option<f64>,
    /// Improvement over the baseline on train (90% bootstrap interval); None for row 0.
    pub interval: Option<Interval>,
    /// Answers with a readable confidence line, of all answered (train and holdout).
    #[serde(default)]
    pub format: crate::eval::runner::FormatShare,
    /// Each watch's accuracy: a candidate must not answer any watch worse than the baseline.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub watches: std::collections::BTreeMap<String, crate::eval::score::WatchAccuracy>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Replace the skill with this row's prompt.
    Apply { row: usize, reason: String },
    /// Keep the current skill.
    Keep { best: Option<usize>, reason: String },
}

impl Decision {
    pub fn reason(&self) -> &str {
        match self {
            Decision::Apply { reason, .. } | Decision::Keep { reason, .. } => reason,
        }
    }
}

/// Decide whether the best candidate replaces the baseline.
pub fn decide(rows: &[RowScore], min_improvement: f64) -> Decision {
    let Some(base) = rows.first() else {
        return Decision::Keep {
            best: None,
            reason: "no baseline score".into(),
        };
    };
    let base_train = base.train.unwrap_or(0.0);
    let best = rows
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, r)| r.train.is_some())
        .max_by(|a, b| {
            let ka = (a.1.train.unwrap_or(0.0), a.1.holdout.unwrap_or(0.0));
            let kb = (b.1.train.unwrap_or(0.0), b.1.holdout.unwrap_or(0.0));
            ka.partial_cmp(&kb).unwrap_or(std::cmp::Ordering::Equal)
        });
    let Some((i, cand)) = best else {
        return Decision::Keep {
            best: None,
            reason: "no candidate was scored".into(),
        };
    };
    let train = cand.train.unwrap_or(0.0);
    let gain = train - base_train;
    if gain < min_improvement {
        return Decision::Keep {
            best: Some(i),
            reason: format!(
                "best candidate #{i} scores {train:.3} on train vs {base_train:.3} now: \
                 {gain:+.3} is below the required +{min_improvement:.3}"
            ),
        };
    }
    if let Some(iv) = cand.interval {
        if iv.lo <= 0.0 {
            return Decision::Keep {
                best: Some(i),
                reason: format!(
                    "candidate #{i} gains {gain:+.3} on train, but its 90% interval \
                     [{:+.3}, {:+.3}] includes no improvement: could be luck",
                    iv.lo, iv.hi
                ),
            };
        }
    }
    if let (Some(h), Some(bh)) = (cand.holdout, base.holdout) {
        if h < bh {
            return Decision::Keep {
                best: Some(i),
                reason: format!(
                    "candidate #{i} is better on train ({train:.3} vs {base_train:.3}) but \
                     worse on holdout ({h:.3} vs {bh:.3}): it may only fit the train cases"
                ),
            };
        }
    }
    // Better descriptions do not buy a broken watch.
    for (id, b) in &base.watches {
        let c = cand.watches.get(id).copied().unwrap_or_default();
        if c.share() < b.share() {
            return Decision::Keep {
                best: Some(i),
                reason: format!(
                    "candidate #{i} is better on train ({train:.3} vs {base_train:.3}) but \
                     breaks watch {id}: {}/{} answered right vs {}/{} now",
                    c.right, c.of, b.right, b.of
                ),
            };
        }
    }
    Decision::Apply {
        row: i,
        reason: format!(
            "candidate #{i} scores {train:.3} on train vs {base_train:.3} now ({gain:+.3}){}",
            match (cand.holdout, base.holdout) {
                (Some(h), Some(bh)) => format!(", holdout {h:.3} vs {bh:.3}"),
                _ => String::new(),
            }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(train: f64, holdout: f64, lo: f64) -> RowScore {
        RowScore {
            train: Some(train),
            holdout: Some(holdout),
            interval: Some(Interval {
                mean: train,
                lo,
                hi: lo + 0.2,
            }),
            format: Default::default(),
            watches: Default::default(),
        }
    }

    fn base(train: f64, holdout: f64) -> RowScore {
        RowScore {
            train: Some(train),
            holdout: Some(holdout),
            interval: None,
            format: Default::default(),
            watches: Default::default(),
        }
    }

    #[test]
    fn clear_winner_is_applied() {
        let d = decide(
            &[base(0.5, 0.5), row(0.6, 0.55, 0.01), row(0.8, 0.7, 0.1)],
            0.02,
        );
        assert!(matches!(d, Decision::Apply { row: 2, .. }), "{d:?}");
    }

    #[test]
    fn a_loss_is_printed_with_one_sign() {
        let d = decide(&[base(0.5, 0.5), row(0.421, 0.6, -0.1)], 0.02);
        assert!(
            d.reason().contains(": -0.079 is below the required +0.020"),
            "{}",
            d.reason()
        );
        assert!(!d.reason().contains("+-"));
    }

    #[test]
    fn too_small_gain_keeps_skill() {
        let d = decide(&[base(0.5, 0.5), row(0.51, 0.6, 0.001)], 0.02);
        assert!(matches!(d, Decision::Keep { best: Some(1), .. }));
        assert!(d.reason().contains("below the required"));
    }

    #[test]
    fn interval_touching_zero_keeps_skill() {
        let d = decide(&[base(0.5, 0.5), row(0.6, 0.6, -0.02)], 0.02);
        assert!(d.reason().contains("could be luck"), "{d:?}");
    }

    #[test]
    fn a_candidate_that_breaks_a_watch_does_not_win() {
        use crate::eval::score::WatchAccuracy;
        let acc = |right, of| WatchAccuracy { right, of };
        let mut b = base(0.5, 0.5);
        b.watches.insert("garage_door".into(), acc(4, 4));
        b.watches.insert("stove_on".into(), acc(1, 2));
        let mut c = row(0.9, 0.8, 0.2);
        c.watches.insert("garage_door".into(), acc(2, 4));
        c.watches.insert("stove_on".into(), acc(2, 2));
        let d = decide(&[b.clone(), c.clone()], 0.02);
        assert!(matches!(d, Decision::Keep { best: Some(1), .. }), "{d:?}");
        assert_eq!(
            d.reason(),
            "candidate #1 is better on train (0.900 vs 0.500) but breaks watch garage_door: \
             2/4 answered right vs 4/4 now"
        );
        // As good on every watch: it wins.
        c.watches.insert("garage_door".into(), acc(4, 4));
        assert!(matches!(
            decide(&[b, c], 0.02),
            Decision::Apply { row: 1, .. }
        ));
    }

    #[test]
    fn worse_on_holdout_is_not_applied() {
        let d = decide(&[base(0.5, 0.6), row(0.9, 0.4, 0.2)], 0.02);
        assert!(matches!(d, Decision::Keep { .. }));
        assert!(d.reason().contains("worse on holdout"), "{d:?}");
    }
}
