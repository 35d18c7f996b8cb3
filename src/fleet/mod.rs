//! The fleet console: every device on the broker in one table (state machine, drawing, run loop).
