//! What the student is asked: the skill as system prompt, the task and the frame.

use crate::model::{ChatRequest, Sampling};
use std::sync::Arc;

/// The user message for every frame (an eval case may override it).
pub const TASK_PROMPT: &str = "Describe the people, objects and any safety-relevant activity in \
this image. Say plainly if anything is unsafe; if nothing is, say \"No safety concerns.\" \
End your answer with a line CONFIDENCE: followed by one decimal number between 0.0 and 1.0.";

/// The task for an eval case given as text instead of an image.
pub fn text_scene_prompt(scene: &str) -> String {
    format!(
        "The camera frame is described in words instead of an image:\n\"{scene}\"\n\n{TASK_PROMPT}"
    )
}

/// The student request for one frame: the skill (its instructions) with the output contract.
pub fn frame_request(skill: &str, image_base64: Arc<str>) -> ChatRequest {
    frame_request_watching(skill, &[], image_base64)
}

/// The student request for one frame with the watches it answers (one line each).
pub fn frame_request_watching(
    skill: &str,
    watches: &[crate::watch::WatchSpec],
    image_base64: Arc<str>,
) -> ChatRequest {
    let (system, user) = crate::roles::output_contract::place(
        skill,
        TASK_PROMPT,
        crate::roles::output_contract::PLACEMENT,
    );
    let system = crate::roles::output_contract::with_watches(&system, watches);
    ChatRequest {
        system: Some(system),
        user,
        images: vec![image_base64],
        format: None,
        stream: true,
        sampling: Sampling::default(),
    }
}
