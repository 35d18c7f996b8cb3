//! The per-answer logic: confidence parsing + escalation policy over 10,000 varied
//! answers, and scoring one answer against 20 eval cases.
//!
//! `cargo bench --bench logic -- --warm-up-time 1 --measurement-time 3`
//!
//! The answers are generated deterministically (splitmix64, fixed seed): plain and
//! markdown confidence lines, percentages, words, out-of-range values, missing lines,
//! nonsense, safety words affirmed and negated, multi-line and long answers.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gemmaedge_tui::config::Config;
use gemmaedge_tui::eval::cases::load_eval_set;
use gemmaedge_tui::eval::score::score_answer;
use gemmaedge_tui::policy::{Observation, Policy};
use gemmaedge_tui::reading::confidence::parse_answer;
use std::hint::black_box;

const ANSWERS: usize = 10_000;

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const SCENES: &[&str] = &[
    "A person sits at a desk with a laptop and a coffee mug.",
    "An empty hallway, lights on, a door on the left.",
    "A cat sleeps on a sofa next to a window.",
    "Two people talk in a kitchen; a pot is on the stove.",
    "A man climbs a ladder to change a light bulb.",
    "Steam rises from a kettle on the stove.",
    "A child plays with blocks on the floor of a living room.",
    "A dog lies on a rug near the front door.",
    "A rocket stands on a launch pad under a clear sky.",
    "A clock on the wall shows ten past two; the image is blurry.",
];
const SAFETY: &[&str] = &[
    "There is smoke near the ceiling.",
    "A small fire is burning in a pan.",
    "Someone has fallen on the stairs and is not moving.",
    "A knife lies at the edge of the table within the child's reach.",
    "Water on the floor is a slip hazard.",
    "A person holds a lighter with a visible flame.",
];
const NEGATED: &[&str] = &[
    "No smoke or fire is visible.",
    "There is no sign of injury.",
    "Nobody has fallen; no danger.",
    "No weapon, no blood, nothing suspicious.",
    "Safety: none.",
];
const NONSENSE: &[&str] = &[
    "asdf qwer zxcv",
    "\u{1F600}\u{1F600} lorem ipsum dolor sit amet",
    "<|im_end|> </s> [INST]",
    "{\"description\": \"a room\"}",
    "",
    "I cannot see the image clearly.",
];
const CONFIDENCE: &[&str] = &[
    "CONFIDENCE: 0.82",
    "CONFIDENCE: 0.4",
    "Confidence: 0.95",
    "confidence: .7",
    "CONFIDENCE: 82%",
    "Confidence: 35 %",
    "**CONFIDENCE:** 0.66",
    "CONFIDENCE = 0.5",
    "CONFIDENCE: 1.7",
    "CONFIDENCE: -0.2",
    "CONFIDENCE: high",
    "CONFIDENCE: 0.9 (fairly sure)",
    "Confidence level: 0.3",
    "CONFIDENCE:",
    "",
    "",
];

/// One answer: 1-3 description sentences (scene, maybe safety, maybe negation, maybe
/// nonsense), then a confidence line in one of many formats (or none).
fn answer(rng: &mut SplitMix) -> String {
    let mut s = String::new();
    match rng.next() % 10 {
        0 => s.push_str(rng.pick(NONSENSE)),
        1..=3 => {
            s.push_str(rng.pick(SCENES));
            s.push(' ');
            s.push_str(rng.pick(SAFETY));
        }
        4..=5 => {
            s.push_str(rng.pick(SCENES));
            s.push(' ');
            s.push_str(rng.pick(NEGATED));
        }
        6 => {
            // A long, multi-line answer.
            for _ in 0..6 {
                s.push_str(rng.pick(SCENES));
                s.push('\n');
            }
        }
        _ => s.push_str(rng.pick(SCENES)),
    }
    let conf = rng.pick(CONFIDENCE);
    if !conf.is_empty() {
        s.push_str(if rng.next() % 3 == 0 { "\n\n" } else { "\n" });
        s.push_str(conf);
    }
    s
}

fn answers() -> Vec<String> {
    let mut rng = SplitMix(0x05EE_D0F6_E44A);
    (0..ANSWERS).map(|_| answer(&mut rng)).collect()
}

fn benches(c: &mut Criterion) {
    let config = Config::default();
    let answers = answers();

    // What the mix looks like, so the numbers can be judged.
    let mut policy = Policy::new(config.policy.clone());
    let (mut with_conf, mut escalated) = (0, 0);
    for a in &answers {
        let p = parse_answer(a);
        with_conf += usize::from(p.confidence.is_some());
        let r = policy.decide(Observation {
            answer: &p.description,
            confidence: p.confidence,
            forced: false,
            prompt: "",
            cut_at: None,
        });
        escalated += usize::from(!r.is_empty());
    }
    println!(
        "{ANSWERS} answers: {with_conf} with a readable confidence, {escalated} escalated \
         (default policy)"
    );

    let mut g = c.benchmark_group("logic");
    g.throughput(Throughput::Elements(ANSWERS as u64));
    g.bench_function("parse_confidence_10k", |b| {
        b.iter(|| {
            for a in &answers {
                black_box(parse_answer(black_box(a)));
            }
        })
    });
    g.bench_function("parse_and_policy_10k", |b| {
        let mut policy = Policy::new(config.policy.clone());
        b.iter(|| {
            for a in &answers {
                let p = parse_answer(black_box(a));
                black_box(policy.decide(Observation {
                    answer: &p.description,
                    confidence: p.confidence,
                    forced: false,
                    prompt: "",
                    cut_at: None,
                }));
            }
        })
    });
    g.finish();

    let eval_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/eval");
    let set = load_eval_set(std::path::Path::new(eval_dir)).expect("load eval/cases.toml");
    let cases: Vec<_> = set.cases.iter().cycle().take(20).collect();
    let terms = config.policy.safety_keywords.clone();
    let one = "A person holds a lighter with a visible flame next to a laptop and a mug on a \
               desk. There is no smoke. This is a fire hazard.\nCONFIDENCE: 0.8";
    let mut g = c.benchmark_group("score");
    g.throughput(Throughput::Elements(cases.len() as u64));
    g.bench_function("one_answer_vs_20_cases", |b| {
        b.iter(|| {
            for case in &cases {
                black_box(score_answer(black_box(one), &case.expectation, &terms));
            }
        })
    });
    g.bench_function("100_varied_answers_vs_20_cases", |b| {
        b.iter(|| {
            for a in &answers[..100] {
                for case in &cases {
                    black_box(score_answer(black_box(a), &case.expectation, &terms));
                }
            }
        })
    });
    g.finish();
}

criterion_group!(logic, benches);
criterion_main!(logic);
