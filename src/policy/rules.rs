//! The escalation policy: which student answers go to the teacher, and why.
//!
//! Confidence alone is not trusted: a missing confidence, a safety word, a periodic
//! audit and the user's own request all escalate too. Every reason is collected so the
//! user sees all of them, not just the first.

use crate::config::PolicyConfig;
use crate::reading::text;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a frame goes to the teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A face asked for it (the `e` key).
    Forced,
    LowConfidence {
        confidence: f32,
        threshold: f32,
    },
    NoConfidence,
    Safety {
        keyword: String,
    },
    /// The keyword completed while the student was still answering
    /// (`policy.early_escalation`): the teacher reviews the answer so far.
    SafetyEarly {
        keyword: String,
        /// Known once the answer is complete: whether the full answer would have
        /// escalated the frame too (false: an early review it would not have made).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        needed: Option<bool>,
    },
    /// Every `audit_every`-th frame that nothing else escalated.
    Audit,
    /// The answer repeats runs of the prompt (the skill) instead of describing the frame;
    /// safety keywords inside the echo were not counted (they are listed here).
    EchoesPrompt {
        words: usize,
        #[serde(default)]
        ignored_keywords: Vec<String>,
    },
    /// The answer hit the token cap (`max_tokens`) and is cut.
    Cut {
        max_tokens: u32,
    },
    /// The student has been down for `policy.student_down_secs`: the teacher watches
    /// alone, one frame every `policy.fallback_every_secs`.
    StudentDown,
    /// A watch's state changed after its `debounce` frames (`watch: garage_door → yes`):
    /// the teacher confirms or overrules it.
    Watch {
        id: String,
        to: String,
    },
    /// The student could not answer a watch (`unsure`, or no line for it).
    WatchUnsure {
        id: String,
    },
}

impl Reason {
    /// Short badge for the console's log.
    pub fn badge(&self) -> String {
        match self {
            Reason::Forced => "FORCED".into(),
            Reason::LowConfidence { .. } => "LOW".into(),
            Reason::NoConfidence => "NOCONF".into(),
            Reason::Safety { keyword } => format!("SAFETY:{keyword}"),
            Reason::SafetyEarly { keyword, .. } => format!("EARLY:{keyword}"),
            Reason::Audit => "AUDIT".into(),
            Reason::EchoesPrompt { .. } => "ECHO".into(),
            Reason::Cut { .. } => "CUT".into(),
            Reason::StudentDown => "DOWN".into(),
            Reason::Watch { id, .. } | Reason::WatchUnsure { id } => format!("WATCH:{id}"),
        }
    }

    /// Higher goes to the teacher first.
    pub fn priority(&self) -> Priority {
        match self {
            Reason::Forced => Priority::Forced,
            Reason::Safety { .. } | Reason::SafetyEarly { .. } => Priority::Safety,
            Reason::LowConfidence { .. }
            | Reason::NoConfidence
            | Reason::Cut { .. }
            | Reason::StudentDown => Priority::Confidence,
            // An echo that swallowed a safety word may hide a real hazard: review it as
            // soon as a safety keyword would be.
            Reason::EchoesPrompt {
                ignored_keywords, ..
            } => {
                if ignored_keywords.is_empty() {
                    Priority::Confidence
                } else {
                    Priority::Safety
                }
            }
            Reason::Audit => Priority::Audit,
            // A watch turning `yes` is what its owner asked to hear about, like a key.
            Reason::Watch { to, .. } if to == "yes" => Priority::Forced,
            Reason::Watch { .. } | Reason::WatchUnsure { .. } => Priority::Confidence,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forced => write!(f, "forced"),
            Reason::LowConfidence {
                confidence,
                threshold,
            } => write!(f, "low confidence ({confidence:.2} < {threshold:.2})"),
            Reason::NoConfidence => write!(f, "no confidence reported"),
            Reason::Safety { keyword } => write!(f, "safety keyword: {keyword}"),
            Reason::SafetyEarly { keyword, needed } => {
                write!(f, "safety keyword (early): {keyword}")?;
                if *needed == Some(false) {
                    write!(f, " (the full answer would not have escalated)")?;
                }
                Ok(())
            }
            Reason::Audit => write!(f, "periodic audit"),
            Reason::EchoesPrompt {
                words,
                ignored_keywords,
            } => {
                write!(f, "answer echoes the prompt ({words} words)")?;
                if !ignored_keywords.is_empty() {
                    write!(f, ", its {} not counted", ignored_keywords.join(", "))?;
                }
                Ok(())
            }
            Reason::Cut { max_tokens } => {
                write!(f, "answer cut at the {max_tokens}-token cap (max_tokens)")
            }
            Reason::StudentDown => write!(f, "student down"),
            Reason::Watch { id, to } => write!(f, "watch: {id} → {to}"),
            Reason::WatchUnsure { id } => write!(f, "watch: {id} unsure"),
        }
    }
}

/// The reasons a student answer's watch steps give (`watch::WatchBoard::on_student`).
pub fn watch_reasons(steps: &[crate::watch::StudentStep]) -> Vec<Reason> {
    use crate::watch::StudentStep;
    steps
        .iter()
        .map(|s| match s {
            StudentStep::Changed { id, to } => Reason::Watch {
                id: id.clone(),
                to: to.as_str().to_string(),
            },
            StudentStep::Unsure { id } => Reason::WatchUnsure { id: id.clone() },
        })
        .collect()
}

/// The finished answer's reasons when an early review of `keyword` already went: the
/// early reason first, saying whether the full answer would have escalated the frame
/// anyway (`needed`; false: the sentence turned out negated, or the word sat in an echo
/// only the full text reveals — a teacher call the early review cost), then the policy's
/// reasons but that keyword's again (the frame is not reviewed twice for it) and an audit
/// (the frame was reviewed).
pub fn after_early(keyword: &str, full: Vec<Reason>) -> Vec<Reason> {
    let needed = full.iter().any(|r| !matches!(r, Reason::Audit));
    let mut reasons = vec![Reason::SafetyEarly {
        keyword: keyword.to_string(),
        needed: Some(needed),
    }];
    reasons.extend(full.into_iter().filter(|r| {
        !matches!(r, Reason::Audit) && !matches!(r, Reason::Safety { keyword: k } if k == keyword)
    }));
    reasons
}

/// The keyword of an early escalation the full answer would not have made, if `reasons`
/// (a finished answer's) hold one.
pub fn unneeded_early(reasons: &[Reason]) -> Option<&str> {
    reasons.iter().find_map(|r| match r {
        Reason::SafetyEarly {
            keyword,
            needed: Some(false),
        } => Some(keyword.as_str()),
        _ => None,
    })
}

/// Teacher queue order: safety > forced > low/no confidence > audit. A forced escalation
/// (a key, a socket or MQTT command: anyone who may command) never goes before, nor
/// pushes out, a frame the student called dangerous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Audit,
    Confidence,
    Forced,
    Safety,
}

/// The confidence the policy acts on, per `policy.confidence`. A missing measured
/// confidence (server without logprobs) falls back to the stated one.
pub fn effective_confidence(
    mode: crate::config::ConfidenceMode,
    stated: Option<f32>,
    measured: Option<f32>,
) -> Option<f32> {
    use crate::config::ConfidenceMode::*;
    match (mode, stated, measured) {
        (Stated, s, _) => s,
        (Measured, _, Some(m)) => Some(m),
        (Measured, s, None) => s,
        (Min, Some(s), Some(m)) => Some(s.min(m)),
        (Min, s, m) => s.or(m),
    }
}

/// The highest priority among `reasons` (None when there are none).
pub fn priority_of(reasons: &[Reason]) -> Option<Priority> {
    reasons.iter().map(Reason::priority).max()
}

/// What the policy needs to know about one answered frame.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The student's answer text.
    pub answer: &'a str,
    pub confidence: Option<f32>,
    pub forced: bool,
    /// The system prompt the answer was given (the skill); runs of it echoed in the
    /// answer are not observations. Empty: no echo check.
    pub prompt: &'a str,
    /// The answer hit this token cap.
    pub cut_at: Option<u32>,
}

/// The policy with its one piece of state: how many frames passed since the last audit.
#[derive(Debug, Clone)]
pub struct Policy {
    config: PolicyConfig,
    /// Frames that nothing escalated since the last audit.
    quiet_frames: u32,
}

impl Policy {
    pub fn new(config: PolicyConfig) -> Self {
        Policy {
            config,
            quiet_frames: 0,
        }
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// Decide for one answered frame; empty means the frame stays on the device.
    pub fn decide(&mut self, obs: Observation<'_>) -> Vec<Reason> {
        let mut reasons = evaluate(&self.config, obs);
        if reasons.is_empty() {
            self.quiet_frames += 1;
            if self.config.audit_every > 0 && self.quiet_frames >= self.config.audit_every {
                self.quiet_frames = 0;
                reasons.push(Reason::Audit);
            }
        }
        reasons
    }
}

/// The stateless part of the policy: every reason but the periodic audit.
pub fn evaluate(config: &PolicyConfig, obs: Observation<'_>) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if obs.forced {
        reasons.push(Reason::Forced);
    }
    match obs.confidence {
        Some(c) if c < config.confidence_threshold => reasons.push(Reason::LowConfidence {
            confidence: c,
            threshold: config.confidence_threshold,
        }),
        Some(_) => {}
        None => reasons.push(Reason::NoConfidence),
    }
    if let Some(max_tokens) = obs.cut_at {
        reasons.push(Reason::Cut { max_tokens });
    }
    let spans = if obs.prompt.is_empty() {
        Vec::new()
    } else {
        crate::reading::echo::echoed_spans(obs.answer, obs.prompt)
    };
    let own_words = crate::reading::echo::without_spans(obs.answer, &spans);
    // One tokenization for every keyword (it was once per keyword: 12x the work).
    let hits = text::affirmed_mentions(&own_words, &config.safety_keywords);
    for (kw, hit) in config.safety_keywords.iter().zip(hits) {
        if hit {
            reasons.push(Reason::Safety {
                keyword: kw.clone(),
            });
        }
    }
    if !spans.is_empty() {
        let all = text::affirmed_mentions(obs.answer, &config.safety_keywords);
        let ignored_keywords = config
            .safety_keywords
            .iter()
            .zip(all)
            .filter(|(kw, hit)| {
                *hit && !reasons
                    .iter()
                    .any(|r| matches!(r, Reason::Safety { keyword } if keyword == *kw))
            })
            .map(|(kw, _)| kw.clone())
            .collect();
        reasons.push(Reason::EchoesPrompt {
            words: crate::reading::echo::echoed_word_count(obs.answer, &spans),
            ignored_keywords,
        });
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(audit_every: u32) -> PolicyConfig {
        PolicyConfig {
            audit_every,
            ..PolicyConfig::default()
        }
    }

    fn obs(answer: &str, confidence: Option<f32>) -> Observation<'_> {
        Observation {
            answer,
            confidence,
            forced: false,
            prompt: "",
            cut_at: None,
        }
    }

    const SKILL: &str = "Describe the frame.\nSafety-relevant activity: fire, flame, smoke, a \
        person who has fallen or is not moving.\nEnd with CONFIDENCE: 0.7";

    #[test]
    fn an_echoed_hazard_list_is_its_own_reason_not_safety_keywords() {
        let answer = "Safety-relevant activity: fire, flame, smoke, a person who has fallen.";
        let o = Observation {
            prompt: SKILL,
            ..obs(answer, Some(0.9))
        };
        let r = evaluate(&cfg(0), o);
        assert_eq!(r.len(), 1, "{r:?}");
        let Reason::EchoesPrompt {
            words,
            ignored_keywords,
        } = &r[0]
        else {
            panic!("{r:?}")
        };
        assert_eq!(*words, 11);
        assert_eq!(ignored_keywords, &["smoke", "fire", "flame", "fallen"]);
        assert_eq!(r[0].badge(), "ECHO");
        assert!(r[0]
            .to_string()
            .starts_with("answer echoes the prompt (11 words), its smoke, fire"));
        // It swallowed safety words: reviewed as early as a safety keyword would be.
        assert_eq!(r[0].priority(), Priority::Safety);
        // Without the prompt the same answer reads as four safety keywords.
        let r = evaluate(&cfg(0), obs(answer, Some(0.9)));
        assert_eq!(r.len(), 4, "{r:?}");
    }

    #[test]
    fn a_keyword_in_the_models_own_words_still_counts_beside_an_echo() {
        let answer = "Smoke rises from a pan. Fire, flame, smoke, a person who has fallen.";
        let o = Observation {
            prompt: SKILL,
            ..obs(answer, Some(0.9))
        };
        let r = evaluate(&cfg(0), o);
        assert!(r.contains(&Reason::Safety {
            keyword: "smoke".into()
        }));
        assert!(
            matches!(r.last(), Some(Reason::EchoesPrompt { ignored_keywords, .. })
            if ignored_keywords == &["fire", "flame", "fallen"])
        );
    }

    #[test]
    fn a_cut_answer_says_so() {
        let o = Observation {
            cut_at: Some(300),
            ..obs("A cat on a sofa, a cat on a sofa, a cat", None)
        };
        let r = evaluate(&cfg(0), o);
        assert_eq!(
            r,
            vec![Reason::NoConfidence, Reason::Cut { max_tokens: 300 }]
        );
        assert_eq!(
            r[1].to_string(),
            "answer cut at the 300-token cap (max_tokens)"
        );
        assert_eq!(r[1].badge(), "CUT");
    }

    #[test]
    fn confident_calm_answer_stays_local() {
        let r = evaluate(&cfg(0), obs("A cat sleeps on a sofa.", Some(0.9)));
        assert!(r.is_empty(), "{r:?}");
    }

    #[test]
    fn low_confidence_names_value_and_threshold() {
        let r = evaluate(&cfg(0), obs("A blurry clock.", Some(0.42)));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].to_string(), "low confidence (0.42 < 0.55)");
        assert_eq!(r[0].badge(), "LOW");
    }

    #[test]
    fn threshold_itself_is_not_low() {
        assert!(evaluate(&cfg(0), obs("x", Some(0.55))).is_empty());
    }

    #[test]
    fn missing_confidence_escalates() {
        let r = evaluate(&cfg(0), obs("A desk.", None));
        assert_eq!(r, vec![Reason::NoConfidence]);
        assert_eq!(r[0].to_string(), "no confidence reported");
    }

    #[test]
    fn safety_keyword_whole_word_case_insensitive() {
        let r = evaluate(&cfg(0), obs("Thick SMOKE near the stove.", Some(0.9)));
        assert_eq!(
            r,
            vec![Reason::Safety {
                keyword: "smoke".into()
            }]
        );
        assert_eq!(r[0].to_string(), "safety keyword: smoke");
        let r = evaluate(&cfg(0), obs("A man holds a firearm case.", Some(0.9)));
        assert!(r.is_empty(), "firearm is not fire: {r:?}");
    }

    #[test]
    fn negated_safety_mentions_do_not_escalate() {
        for a in [
            "An office. No smoke or fire visible.",
            "There is no sign of fire.",
            "The stove is not on fire.",
            "A kitchen without any smoke.",
        ] {
            let r = evaluate(&cfg(0), obs(a, Some(0.9)));
            assert!(r.is_empty(), "{a}: {r:?}");
        }
    }

    #[test]
    fn all_reasons_are_collected_and_forced_first() {
        let o = Observation {
            answer: "Flames and smoke in the hall.",
            confidence: Some(0.2),
            forced: true,
            prompt: "",
            cut_at: None,
        };
        let r = evaluate(&cfg(0), o);
        assert_eq!(r[0], Reason::Forced);
        assert!(r.contains(&Reason::Safety {
            keyword: "smoke".into()
        }));
        assert!(r.contains(&Reason::Safety {
            keyword: "flame".into()
        }));
        assert!(matches!(r[1], Reason::LowConfidence { .. }));
        assert_eq!(priority_of(&r), Some(Priority::Safety));
        assert_eq!(priority_of(&[Reason::Forced]), Some(Priority::Forced));
    }

    #[test]
    fn audit_counts_only_quiet_frames() {
        let mut p = Policy::new(cfg(3));
        let quiet = obs("A desk.", Some(0.9));
        let loud = obs("A desk.", None);
        assert!(p.decide(quiet).is_empty());
        assert!(p.decide(quiet).is_empty());
        // An escalated frame does not count towards the audit.
        assert_eq!(p.decide(loud), vec![Reason::NoConfidence]);
        assert_eq!(p.decide(quiet), vec![Reason::Audit]);
        assert!(p.decide(quiet).is_empty());
        assert!(p.decide(quiet).is_empty());
        assert_eq!(p.decide(quiet), vec![Reason::Audit]);
    }

    #[test]
    fn audit_off_when_zero() {
        let mut p = Policy::new(cfg(0));
        for _ in 0..50 {
            assert!(p.decide(obs("A desk.", Some(0.9))).is_empty());
        }
    }

    #[test]
    fn confidence_modes() {
        use crate::config::ConfidenceMode::*;
        assert_eq!(
            effective_confidence(Stated, Some(1.0), Some(0.4)),
            Some(1.0)
        );
        assert_eq!(
            effective_confidence(Measured, Some(1.0), Some(0.4)),
            Some(0.4)
        );
        assert_eq!(effective_confidence(Measured, Some(1.0), None), Some(1.0));
        assert_eq!(effective_confidence(Min, Some(1.0), Some(0.4)), Some(0.4));
        assert_eq!(effective_confidence(Min, None, Some(0.4)), Some(0.4));
        assert_eq!(effective_confidence(Min, None, None), None);
    }

    #[test]
    fn watch_steps_are_reasons_of_their_own() {
        use crate::watch::{StudentStep, WatchState};
        let r = watch_reasons(&[
            StudentStep::Changed {
                id: "garage_door".into(),
                to: WatchState::Yes,
            },
            StudentStep::Unsure { id: "stove".into() },
        ]);
        assert_eq!(r[0].to_string(), "watch: garage_door → yes");
        assert_eq!(r[0].badge(), "WATCH:garage_door");
        assert_eq!(r[0].priority(), Priority::Forced);
        assert_eq!(r[1].to_string(), "watch: stove unsure");
        assert_eq!(r[1].priority(), Priority::Confidence);
        // Logged and read back.
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Vec<Reason>>(&line).unwrap(), r);
    }

    #[test]
    fn priorities_order() {
        // A forced escalation never goes before a safety one (issue 33).
        assert!(Priority::Safety > Priority::Forced);
        assert!(Priority::Forced > Priority::Confidence);
        assert!(Priority::Confidence > Priority::Audit);
    }

    #[test]
    fn after_an_early_review_the_keyword_and_audit_are_not_asked_again() {
        let smoke = || Reason::Safety {
            keyword: "smoke".into(),
        };
        let early = |needed| Reason::SafetyEarly {
            keyword: "smoke".into(),
            needed: Some(needed),
        };
        // The full answer says smoke too: needed, and smoke is not a second reason.
        let r = after_early("smoke", vec![smoke(), Reason::NoConfidence]);
        assert_eq!(r, vec![early(true), Reason::NoConfidence]);
        assert_eq!(unneeded_early(&r), None);
        // The full answer turned out negated: nothing (or only an audit) would have gone.
        for full in [vec![], vec![Reason::Audit]] {
            let r = after_early("smoke", full);
            assert_eq!(r, vec![early(false)]);
            assert_eq!(unneeded_early(&r), Some("smoke"));
        }
        assert_eq!(
            early(false).to_string(),
            "safety keyword (early): smoke (the full answer would not have escalated)"
        );
        assert_eq!(early(false).priority(), Priority::Safety);
    }
}
