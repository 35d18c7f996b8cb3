//! The console's screens: the monitor, the upskill run, the calibration report, the
//! history. Each owns its state, its keys and its drawing.

pub mod calibration;
pub mod history;
pub mod monitor;
pub mod upskill;
