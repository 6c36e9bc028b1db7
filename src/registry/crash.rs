//! Fault injection for the crash tests: named points where the process may abort.

/// Fault injection for the crash tests: the process aborts (as `kill -9` would stop
/// it, with no cleanup) at the point named by `BLOCKYARD_CRASH_AT`. Unset, nothing.
pub fn crash_point(point: &str) {
    if std::env::var("BLOCKYARD_CRASH_AT").is_ok_and(|p| p == point) {
        std::process::abort();
    }
}
