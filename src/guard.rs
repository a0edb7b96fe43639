//! Running application hooks so that a panic costs one connection, not a
//! worker.
//!
//! A hook runs under `catch_unwind`. The standard panic hook would still
//! print every such panic to stderr, a storm of thousands of lines; so the
//! first server started installs, once per process, a panic hook that
//! stays silent for panics inside a guarded hook call (the worker logs
//! them itself, rate-limited, with the connection id) and hands every
//! other panic to the hook that was installed before.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs the quiet panic hook (once per process; later calls do nothing).
pub(crate) fn install_panic_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) {
                let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                let message = format!("{}{location}", payload_text(info.payload()));
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(message));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `hook`; `Err` carries the panic's message and location when it
/// panicked.
pub(crate) fn call<R>(hook: impl FnOnce() -> R) -> Result<R, String> {
    let was_guarded = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(hook));
    GUARDED.with(|g| g.set(was_guarded));
    result.map_err(|payload| {
        LAST_PANIC.with(|last| last.borrow_mut().take()).unwrap_or_else(|| payload_text(payload.as_ref()))
    })
}

/// The text of a panic payload, when it is a string.
pub(crate) fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_hook_is_caught_with_its_message_and_location() {
        install_panic_hook();
        let caught = call(|| -> u32 { panic!("boom {}", 7) });
        let message = caught.expect_err("it panicked");
        assert!(message.starts_with("boom 7 at "), "{message}");
        assert!(message.contains("guard.rs"), "{message}");
        assert_eq!(call(|| 5), Ok(5));
    }
}
