//! Ctrl-C: the first press asks long work to stop at the next safe point (training writes a
//! checkpoint); a second press exits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler; safe to call more than once.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupt: finishing the current step (press Ctrl-C again to abort)");
    });
}

pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
