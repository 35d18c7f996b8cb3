//! Upskill: the teacher writes candidate skills, the student is scored on the eval set,
//! and the winner (if it really is better) becomes the skill.

pub mod candidates;
pub mod decision;
pub mod extract;
pub mod meta_prompt;
pub mod overlap;
pub mod pipeline;
pub mod report;
pub mod runner;
