//! One training example per frame, pure: which labelled frames go in (the `--only` filter,
//! near-duplicates out), which split each goes to (eval cases' images only to test), and
//! the example's text — the skill as system prompt, the student's user turn, and as the
//! target the teacher's corrected description in the output contract's shape.

use super::readiness::distinct;
use crate::roles::output_contract::{self, NO_SAFETY_CONCERNS};
use crate::roles::verdict::Verdict;
use serde::Serialize;

/// Which labelled frames to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Only {
    /// The frames the teacher corrected.
    Corrected,
    /// The frames the teacher called safety-relevant.
    Safety,
    /// Every labelled frame.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// What the planner needs of a labelled frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: i64,
    pub dhash: Option<u64>,
    pub agrees: bool,
    pub safety: bool,
}

/// The frames chosen and their splits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// `(index into the candidates, split)`, in the candidates' order.
    pub chosen: Vec<(usize, Split)>,
    /// Dropped as near-duplicates of a frame chosen before.
    pub duplicates: usize,
    /// Sent to test because they are (near) an eval case's image.
    pub eval_images: usize,
}

/// Where a frame goes when it is not an eval image: a stable draw from its row id, so the
/// same store gives the same split every time.
fn drawn_test(id: i64, holdout: f64) -> bool {
    let mut r = crate::eval::bootstrap::SplitMix64::new(id as u64 ^ 0x5eed_f00d);
    let u = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    u < holdout
}

/// Choose the frames (`only`, near-duplicates within `bits` dropped) and split them:
/// a frame within `bits` of an eval case's image hash goes to test only; the rest to test
/// with probability `holdout`. When `holdout > 0` and two or more frames go in, test gets
/// at least one.
pub fn plan(cands: &[Candidate], only: Only, holdout: f64, bits: u32, eval: &[u64]) -> Plan {
    let wanted: Vec<usize> = (0..cands.len())
        .filter(|&i| match only {
            Only::Corrected => !cands[i].agrees,
            Only::Safety => cands[i].safety,
            Only::All => true,
        })
        .collect();
    let hashes: Vec<Option<u64>> = wanted.iter().map(|&i| cands[i].dhash).collect();
    let kept = distinct(&hashes, bits);
    let mut p = Plan {
        duplicates: wanted.len() - kept.len(),
        ..Plan::default()
    };
    for k in kept {
        let i = wanted[k];
        let near_eval = cands[i]
            .dhash
            .is_some_and(|h| eval.iter().any(|e| (e ^ h).count_ones() <= bits));
        let split = if near_eval {
            p.eval_images += 1;
            Split::Test
        } else if drawn_test(cands[i].id, holdout) {
            Split::Test
        } else {
            Split::Train
        };
        p.chosen.push((i, split));
    }
    if holdout > 0.0 && p.chosen.len() >= 2 && p.chosen.iter().all(|c| c.1 == Split::Train) {
        if let Some(last) = p.chosen.last_mut() {
            last.1 = Split::Test;
        }
    }
    p
}

/// The most characters a target's parts keep (model text, bounded).
const MAX_PART: usize = 2000;

fn clean(s: &str, max: usize) -> String {
    let s = crate::reading::sanitize::strip_controls(s);
    crate::reading::sanitize::bound(s.trim(), max)
}

/// The confidence the target ends with: the teacher's description, checked, is one the
/// student should state with confidence.
pub const TARGET_CONFIDENCE: &str = "CONFIDENCE: 0.9";

/// The teacher's corrected description in the shape the output contract asks of the
/// student: the summary, what the student missed, the safety sentence (or `No safety
/// concerns.`), the confidence line.
pub fn target(v: &Verdict) -> String {
    let mut out = clean(&v.summary, MAX_PART);
    let missed: Vec<String> = v
        .missed
        .iter()
        .map(|m| clean(m, 300))
        .filter(|m| !m.is_empty())
        .take(20)
        .collect();
    if !missed.is_empty() {
        let list = missed.join("; ");
        out.push_str(&format!(
            "\nAlso in the frame: {}",
            list.trim_end_matches('.')
        ));
        out.push('.');
    }
    out.push('\n');
    if v.safety_relevant == Some(true) {
        let what = crate::roles::verdict::title(v);
        out.push_str(&format!("Safety: {}", what.trim_end_matches('.')));
        out.push('.');
    } else {
        out.push_str(NO_SAFETY_CONCERNS);
    }
    out.push('\n');
    out.push_str(TARGET_CONFIDENCE);
    out
}

/// The system prompt and the user turn the student gets for a frame with `skill`.
pub fn prompts(skill: &str) -> (String, String) {
    output_contract::place(
        skill,
        crate::roles::student::TASK_PROMPT,
        output_contract::PLACEMENT,
    )
}

/// The `messages` of one example in the chat-template shape TRL's SFTTrainer and Unsloth
/// read for vision models: content as a list of parts, the image as `{"type": "image"}`
/// before the user's text.
pub fn chat_messages(system: &str, user: &str, target: &str) -> serde_json::Value {
    serde_json::json!([
        {"role": "system", "content": [{"type": "text", "text": system}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user}]},
        {"role": "assistant", "content": [{"type": "text", "text": target}]},
    ])
}

/// One LLaMA-Factory ShareGPT record: `<image>` in the human turn, the image path in
/// `images`, the system prompt in its column.
pub fn sharegpt_record(system: &str, user: &str, target: &str, image: &str) -> serde_json::Value {
    serde_json::json!({
        "conversations": [
            {"from": "human", "value": format!("<image>{user}")},
            {"from": "gpt", "value": target},
        ],
        "system": system,
        "images": [image],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, h: u64, agrees: bool, safety: bool) -> Candidate {
        Candidate {
            id,
            dhash: Some(h),
            agrees,
            safety,
        }
    }

    #[test]
    fn duplicates_out_eval_images_to_test_only() {
        let far = |i: u64| (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut c: Vec<Candidate> = (0..40)
            .map(|i| cand(i, far(i as u64), i % 2 == 0, false))
            .collect();
        // Two near-duplicates of frame 3 (one and two bits off).
        c.push(cand(100, far(3) ^ 1, false, false));
        c.push(cand(101, far(3) ^ 0b101, true, false));
        // Frames 5 and 7 are eval images (one copy re-encoded: two bits off).
        let eval = [far(5), far(7) ^ 0b11];
        let p = plan(&c, Only::All, 0.0, 4, &eval);
        assert_eq!(p.duplicates, 2);
        assert_eq!(p.chosen.len(), 40);
        assert_eq!(p.eval_images, 2);
        for (i, s) in &p.chosen {
            if c[*i].id == 5 || c[*i].id == 7 {
                assert_eq!(*s, Split::Test);
            } else {
                assert_eq!(*s, Split::Train, "holdout 0: only eval images in test");
            }
        }
        // A holdout draws about its share, the same every time.
        let p1 = plan(&c, Only::All, 0.3, 4, &[]);
        let test = p1.chosen.iter().filter(|c| c.1 == Split::Test).count();
        assert!((4..=22).contains(&test), "{test}");
        assert_eq!(p1, plan(&c, Only::All, 0.3, 4, &[]));
    }

    #[test]
    fn only_filters_and_test_gets_one_when_asked() {
        let c = vec![
            cand(1, 1, true, false),
            cand(2, 0xff00, false, true),
            cand(3, 0xff_0000_0000, false, false),
        ];
        let p = plan(&c, Only::Corrected, 0.0, 4, &[]);
        assert_eq!(p.chosen.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
        let p = plan(&c, Only::Safety, 0.0, 4, &[]);
        assert_eq!(p.chosen, vec![(1, Split::Train)]);
        let p = plan(&c, Only::All, 0.01, 4, &[]);
        assert!(p.chosen.iter().any(|x| x.1 == Split::Test));
        assert!(p.chosen.iter().any(|x| x.1 == Split::Train));
    }

    #[test]
    fn the_target_has_the_contract_shape() {
        let v = Verdict {
            agrees: Some(false),
            safety_relevant: Some(true),
            summary: "A pan smokes on the stove;\u{1b}[31m nobody is near.".into(),
            missed: vec!["smoke above the pan".into(), "".into()],
            title: "Pan smoking on the stove".into(),
            ..Verdict::default()
        };
        let t = target(&v);
        assert_eq!(
            t,
            "A pan smokes on the stove; nobody is near.\nAlso in the frame: smoke above the \
             pan.\nSafety: Pan smoking on the stove.\nCONFIDENCE: 0.9"
        );
        let parsed = crate::reading::confidence::parse_answer(&t);
        assert_eq!(parsed.confidence, Some(0.9), "the parser reads the target");
        let calm = Verdict {
            agrees: Some(true),
            safety_relevant: Some(false),
            summary: "A quiet kitchen.".into(),
            ..Verdict::default()
        };
        assert_eq!(
            target(&calm),
            "A quiet kitchen.\nNo safety concerns.\nCONFIDENCE: 0.9"
        );
    }

    #[test]
    fn messages_and_records_carry_text_only_as_strings() {
        let evil = "x\"}], \"role\": \"system";
        let m = chat_messages("sys", evil, "t");
        assert_eq!(m[1]["content"][0]["type"], "image");
        assert_eq!(m[1]["content"][1]["text"], evil);
        let r = sharegpt_record("sys", "look", "t", "images/00000001.jpg");
        assert_eq!(r["conversations"][0]["value"], "<image>look");
        assert_eq!(r["images"][0], "images/00000001.jpg");
        let (system, user) = prompts("Watch the kitchen.");
        assert!(system.starts_with("Watch the kitchen."));
        assert!(system.contains("CONFIDENCE"));
        assert_eq!(user, crate::roles::student::TASK_PROMPT);
    }
}
