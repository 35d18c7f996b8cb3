//! The process's one error and panic report hook (color-eyre's), and the restore steps a face registers with it (the console's terminal), run before a panic is printed.
//!
//! `main` installs it before anything else runs; a face that changes the terminal only
//! registers how to undo that ([`on_panic`]), so a panic anywhere (any thread, any task)
//! first gives the user their terminal back, then prints color-eyre's report on it.

use std::sync::{Mutex, MutexGuard, Once};

static INSTALL: Once = Once::new();
static STEPS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

fn steps() -> MutexGuard<'static, Vec<fn()>> {
    STEPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Install color-eyre's report hooks, its panic hook running the restore steps first.
/// `colour`: coloured reports (stderr is a terminal). The first call wins; later calls do
/// nothing, so a face may call it too to be sure.
pub fn install(colour: bool) {
    INSTALL.call_once(|| {
        let theme = if colour {
            color_eyre::config::Theme::dark()
        } else {
            color_eyre::config::Theme::new()
        };
        let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default()
            .display_env_section(false)
            .theme(theme)
            .into_hooks();
        // Fails only when someone else installed an eyre hook; theirs reports as well.
        let _ = eyre_hook.install();
        let report = panic_hook.into_panic_hook();
        std::panic::set_hook(Box::new(move |info| {
            run_restore_steps();
            report(info);
        }));
    });
}

/// Run `step` before a panic is reported (once per step, however often registered). A
/// step must be safe to run at any time, also when there is nothing to undo.
pub fn on_panic(step: fn()) {
    let mut s = steps();
    if !s.iter().any(|f| std::ptr::fn_addr_eq(*f, step)) {
        s.push(step);
    }
}

/// Every registered restore step, in order (the panic hook calls this).
pub fn run_restore_steps() {
    // Copied out: a step that panics must not leave the lock poisoned mid-way.
    let all: Vec<fn()> = steps().clone();
    for step in all {
        step();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RAN: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        RAN.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_panic_runs_each_restore_step_once_before_the_report() {
        install(false);
        install(false); // harmless
        on_panic(count);
        on_panic(count); // registered once
        let registered = steps()
            .iter()
            .filter(|f| std::ptr::fn_addr_eq(**f, count as fn()))
            .count();
        assert_eq!(registered, 1);
        let before = RAN.load(Ordering::SeqCst);
        let r = std::thread::spawn(|| panic!("test panic: the restore step must run")).join();
        assert!(r.is_err());
        // (Another test's panic may run it too, meanwhile.)
        assert!(RAN.load(Ordering::SeqCst) > before);
    }
}
