//! What the teacher is asked to write: N candidate skills that target the current
//! skill's real failures on the train cases.

use crate::eval::cases::{Case, CaseInput};
use crate::eval::runner::CaseResult;
use crate::model::{ChatRequest, Sampling};

/// The reply format: an object holding the array (`format: "json"` never yields a bare array).
pub fn candidates_schema(n: usize) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "prompts": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": n
            }
        },
        "required": ["prompts"]
    })
}

/// Why a case failed, in words the teacher can act on.
pub fn failure_note(case: &Case, r: &CaseResult) -> Option<String> {
    let mut why = Vec::new();
    if let Some(e) = &r.error {
        why.push(format!("the call failed ({e})"));
    }
    if !r.score.missed.is_empty() {
        why.push(format!("did not mention: {}", r.score.missed.join(", ")));
    }
    if !r.score.forbidden.is_empty() {
        why.push(format!(
            "wrongly mentioned: {}",
            r.score.forbidden.join(", ")
        ));
    }
    if !r.score.safety_ok {
        why.push(if case.expectation.safety {
            "did not flag the safety-relevant activity".to_string()
        } else {
            "raised a false safety alarm".to_string()
        });
    }
    if !r.score.format_ok {
        why.push("no parseable CONFIDENCE line at the end".into());
    }
    if why.is_empty() {
        return None;
    }
    let scene = match &case.input {
        CaseInput::Text(t) => format!("scene \"{t}\""),
        CaseInput::Image(p) => format!(
            "photo {}",
            p.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ),
    };
    Some(format!("- {} ({scene}): {}", case.id, why.join("; ")))
}

/// The teacher request for `n` candidate prompts.
pub fn candidates_request(
    n: usize,
    current_skill: &str,
    baseline_train: f64,
    failures: &[String],
    max_chars: usize,
) -> ChatRequest {
    let failures = if failures.is_empty() {
        "(none: it passed every train case; aim for the same with clearer, shorter instructions)"
            .to_string()
    } else {
        failures.join("\n")
    };
    let user = format!(
        "A small vision model on a Raspberry Pi watches a room through a webcam. For each frame \
         it gets a system prompt and must describe the people, the objects and any \
         safety-relevant activity. The system prompt has two parts: the instructions (its \
         \"skill\", which you will rewrite) and a fixed answer format that the program \
         always appends after them:\n<<<\n{contract}\n>>>\n\n\
         Current instructions (score {:.2} of 1.00 on the train cases):\n<<<\n{current_skill}\n>>>\n\n\
         Train cases it failed, and why:\n{failures}\n\n\
         Write {n} different improved versions of the instructions that fix these failures \
         without breaking what works. Each is a system prompt addressed to the small model \
         (\"You …\", \"Describe …\"), at most {max_chars} characters, plain text. Do not \
         describe a scene yourself, do not repeat the answer format (it is appended anyway) \
         and do not mention the test cases. \
         Reply as JSON: {{\"prompts\": [\"...\", \"...\"]}}",
        baseline_train,
        contract = crate::roles::output_contract::OUTPUT_CONTRACT,
    );
    ChatRequest {
        system: Some(
            "You are an expert prompt engineer for small vision-language models. Reply with JSON only."
                .into(),
        ),
        user,
        images: vec![],
        format: Some(candidates_schema(n)),
        stream: false,
        sampling: Sampling {
            // Room for n prompts of up to max_chars each (~3 characters a token) and the
            // JSON around them, whatever the teacher's own cap for a verdict is.
            max_tokens: Some(((n * max_chars) / 3 + 256).min(32_768) as u32),
            ..Sampling::default()
        },
    }
}
