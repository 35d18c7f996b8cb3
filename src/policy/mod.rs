//! The escalation policy: which answers go to the teacher, how often, and how well confidence is calibrated.
//!
//! `rules` decides per answer; `escalation_rate` and `calibration` watch the decisions over time.

pub mod calibration;
pub mod early;
pub mod escalation_rate;
pub mod per_minute;
mod rules;

pub use rules::*;
