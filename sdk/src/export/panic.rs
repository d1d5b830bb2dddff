//! Panics in plugin code: a hook that keeps them out of the worker's
//! stderr and remembers where they happened, for the log line of the shim
//! that catches them.

use std::any::Any;

thread_local! {
    /// Where the last panic on this thread happened, recorded by the hook
    /// that [`quiet_panics`] installs, for the log line of the shim that
    /// catches it.
    static PANIC_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replaces the default panic hook (which prints to the worker's stderr,
/// outside the error log) with one that only records the location; the shim
/// that catches the panic logs message and location through the host. The
/// hook belongs to this plugin's own copy of `std`, so it affects only
/// panics in this plugin.
pub(super) fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_AT.with(|cell| *cell.borrow_mut() = at);
    }));
}

/// `" at file:line"` for the panic just caught on this thread, if known.
pub(super) fn panic_location() -> String {
    PANIC_AT
        .with(|cell| cell.borrow_mut().take())
        .map(|at| format!(" at {at}"))
        .unwrap_or_default()
}

/// The text of a panic payload.
pub(super) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
