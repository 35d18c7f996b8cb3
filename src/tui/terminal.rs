//! Entering and leaving the console's terminal mode, and never leaving a broken terminal
//! behind: restore is idempotent and runs from a guard's `Drop` and, registered as a
//! restore step, from the process's one panic hook (`crate::hooks`).

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};

static ACTIVE: AtomicBool = AtomicBool::new(false);

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Owns the terminal while the console runs; dropping it restores the terminal.
pub struct TerminalGuard {
    pub terminal: Term,
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore();
    }
}

/// Raw mode, alternate screen, mouse capture, hidden cursor.
pub fn enter() -> io::Result<TerminalGuard> {
    // A panic on any thread gives the terminal back before the report is printed.
    crate::hooks::on_panic(restore_for_panic);
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    let mut out = io::stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen, EnableMouseCapture, cursor::Hide) {
        let _ = restore();
        return Err(e);
    }
    match Terminal::new(CrosstermBackend::new(io::stdout())) {
        Ok(terminal) => Ok(TerminalGuard { terminal }),
        Err(e) => {
            let _ = restore();
            Err(e)
        }
    }
}

/// Undo `enter`. Safe to call any number of times, and when `enter` never ran.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let mut out = io::stdout();
    // Try every step even if one fails (e.g. the SSH link is gone).
    let a = execute!(out, DisableMouseCapture, LeaveAlternateScreen, cursor::Show);
    let b = disable_raw_mode();
    a.and(b)
}

/// The restore step the panic hook runs (errors cannot be reported from there).
fn restore_for_panic() {
    let _ = restore();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_without_enter_is_a_no_op() {
        assert!(restore().is_ok());
        assert!(restore().is_ok());
    }

    #[test]
    fn a_panic_restores_the_terminal_through_the_one_hook() {
        crate::hooks::install(false);
        crate::hooks::on_panic(restore_for_panic);
        // As if `enter` had run (a test has no terminal to put in raw mode).
        ACTIVE.store(true, Ordering::SeqCst);
        let r = std::thread::spawn(|| panic!("test panic: the terminal must be restored")).join();
        assert!(r.is_err());
        assert!(!ACTIVE.load(Ordering::SeqCst), "restored by the panic hook");
    }
}
