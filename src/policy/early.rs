//! Early escalation (`policy.early_escalation`): the safety keyword as the student's
//! answer streams in, and what the finished answer makes of an early review. Pure; the
//! student loop feeds the tokens.

use crate::config::PolicyConfig;
use crate::policy::{evaluate, Observation};

/// The newest affirmed safety keyword of an answer as it streams in, checked only when a
/// word completes (a token that holds a non-word character), reported once per answer.
/// Like the policy, words that echo the prompt (`reading::echo`) are not observations: a
/// word is only checked once enough words follow it to know it is not part of an echo.
pub struct KeywordWatch<'a> {
    keywords: &'a [String],
    /// The system prompt the answer was given ("" = no echo check).
    prompt: &'a str,
    text: String,
    checked_to: usize,
    fired: bool,
}

impl<'a> KeywordWatch<'a> {
    pub fn new(keywords: &'a [String], prompt: &'a str) -> Self {
        KeywordWatch {
            keywords,
            prompt,
            text: String::new(),
            checked_to: 0,
            fired: keywords.is_empty(),
        }
    }

    /// The answer as far as it streamed.
    pub fn so_far(&self) -> &str {
        &self.text
    }

    /// Take a token; Some(keyword) the first time a complete word makes one affirmed
    /// (negation-aware: "no smoke" is not one) outside any echo of the prompt.
    pub fn push(&mut self, token: &str) -> Option<&'a str> {
        if self.fired {
            return None;
        }
        self.text.push_str(token);
        let complete = self
            .text
            .rfind(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))?;
        if complete <= self.checked_to {
            return None;
        }
        let own = crate::reading::echo::settled_own_words(&self.text[..complete], self.prompt);
        let end = own.settled;
        if end <= self.checked_to {
            return None;
        }
        self.checked_to = end;
        let hits = crate::reading::text::affirmed_mentions(&own.text, self.keywords);
        let kw = self.keywords.iter().zip(hits).find(|(_, h)| *h)?.0;
        self.fired = true;
        Some(kw.as_str())
    }
}

/// What early escalation costs on a set of answers: how many escalate early, and how many
/// of those the full answer would not have escalated (extra teacher calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EarlyCost {
    pub answers: usize,
    pub early: usize,
    pub unneeded: usize,
}

impl EarlyCost {
    /// Extra teacher calls per 1000 frames.
    pub fn extra_per_1000(&self) -> f64 {
        if self.answers == 0 {
            return 0.0;
        }
        self.unneeded as f64 * 1000.0 / self.answers as f64
    }
}

/// Stream each answer through [`KeywordWatch`] in `token_chars`-character tokens (as the
/// student loop sees it, after the skill `prompt`) and compare with the policy's verdict
/// on the full answer (audits aside: they are not the answer's doing).
pub fn early_cost(
    answers: &[&str],
    prompt: &str,
    config: &PolicyConfig,
    token_chars: usize,
) -> EarlyCost {
    let mut cost = EarlyCost {
        answers: answers.len(),
        ..EarlyCost::default()
    };
    for a in answers {
        let mut w = KeywordWatch::new(&config.safety_keywords, prompt);
        let chars: Vec<char> = a.chars().collect();
        let fired = chars
            .chunks(token_chars.max(1))
            .any(|t| w.push(&t.iter().collect::<String>()).is_some());
        if !fired {
            continue;
        }
        cost.early += 1;
        let parsed = crate::reading::confidence::parse_answer(a);
        let full = evaluate(
            config,
            Observation {
                answer: &parsed.description,
                confidence: parsed.confidence,
                forced: false,
                prompt,
                cut_at: None,
            },
        );
        if full.is_empty() {
            cost.unneeded += 1;
        }
    }
    cost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_mid_stream_once_and_only_whole_affirmed_words() {
        let kws: Vec<String> = ["smoke", "fire"].iter().map(|s| s.to_string()).collect();
        let feed = |tokens: &[&str]| {
            let mut w = KeywordWatch::new(&kws, "");
            tokens
                .iter()
                .enumerate()
                .filter_map(|(i, t)| w.push(t).map(|k| (i, k.to_string())))
                .collect::<Vec<_>>()
        };
        // Reported once the word is known complete (the next token starts with a space),
        // and only once.
        assert_eq!(
            feed(&["A pan ", "on fi", "re", " with smoke", " and fire."]),
            vec![(3, "fire".to_string())]
        );
        // "fire" inside "firearm" is not fire; "no smoke" is not smoke.
        assert!(feed(&["A fire", "arm case. ", "No smo", "ke here."]).is_empty());
        assert_eq!(feed(&["Smoke"]), vec![], "not complete yet");
    }

    #[test]
    fn an_echoed_keyword_does_not_warm_the_teacher() {
        let kws: Vec<String> = ["smoke", "fire"].iter().map(|s| s.to_string()).collect();
        let prompt = "Watch for safety-relevant activity: fire, flame, smoke, a person who has \
                      fallen. Always end with a confidence line.";
        let feed = |text: &str| {
            let mut w = KeywordWatch::new(&kws, prompt);
            // Tokens of 4 characters, as the test server streams them.
            let chars: Vec<char> = text.chars().collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .filter_map(|t| w.push(&t).map(|k| k.to_string()))
                .collect::<Vec<_>>()
        };
        // The answer repeats the prompt's hazard list: an echo, not an observation.
        assert!(feed(
            "I watch for safety-relevant activity: fire, flame, smoke, a person who has \
                  fallen. A desk and a lamp. No safety concerns.\nCONFIDENCE: 0.9"
        )
        .is_empty());
        // Its own words still count, once enough words follow them.
        assert_eq!(
            feed("There is smoke rising from a pan on the stove in the kitchen.\nCONFIDENCE: 0.8"),
            vec!["smoke".to_string()]
        );
    }

    #[test]
    fn the_cost_counts_early_reviews_the_full_answer_would_not_make() {
        let config = PolicyConfig::default();
        let answers = [
            // Early, and the full answer escalates too.
            "Smoke rises from a pan on the stove in the kitchen.\nCONFIDENCE: 0.9",
            // Early, but the full answer negates it: an extra call.
            "Smoke: none. A tidy kitchen counter with a kettle and a lamp.\nCONFIDENCE: 0.9",
            // Never early.
            "No smoke or fire here, a tidy kitchen counter with a kettle.\nCONFIDENCE: 0.9",
            "A dog sleeps on a rug by the door.\nCONFIDENCE: 0.9",
        ];
        let c = early_cost(&answers, "", &config, 4);
        assert_eq!((c.answers, c.early, c.unneeded), (4, 2, 1));
        assert_eq!(c.extra_per_1000(), 250.0);
    }
}
