//! CLI subcommands: thin faces over the library for scripts and cron.

pub mod check;
pub mod eval_cmd;
pub mod eval_models;
pub mod finetune_cmd;
pub mod headless;
pub mod history_cmd;
pub mod learn_cmd;
pub mod table;
pub mod upskill_cmd;

/// Exit code for bad input (config, eval files).
pub const EXIT_BAD_INPUT: i32 = 2;
