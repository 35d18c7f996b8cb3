//! Entering and leaving the console's terminal mode, and never leaving a broken terminal
//! behind: restore is idempotent and runs from a guard's `Drop` and from the panic hook.

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

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

/// Install color-eyre's hooks, with the panic hook restoring the terminal before it prints.
/// Installing twice is harmless.
pub fn install_hooks() {
    HOOK.call_once(|| {
        let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default()
            .display_env_section(false)
            .into_hooks();
        // Fails when main already installed one; theirs is fine.
        let _ = eyre_hook.install();
        let panic_hook = panic_hook.into_panic_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore();
            panic_hook(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_without_enter_is_a_no_op() {
        assert!(restore().is_ok());
        assert!(restore().is_ok());
    }
}
