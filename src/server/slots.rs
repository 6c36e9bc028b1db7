//! Bounds on the connection tests the web UI runs for callers: each holds a blocking
//! thread for up to its timeout, so at most [`PER_TOKEN`] run at once per token and
//! [`OVERALL`] in all; a test beyond that is refused at once (429) instead of queued.

use std::collections::HashMap;
use std::sync::Mutex;

/// Tests one token may have running at once.
pub const PER_TOKEN: usize = 2;
/// Tests the server runs at once for every caller together.
pub const OVERALL: usize = 16;

/// The tests running now, by token id.
#[derive(Default)]
pub struct TestSlots {
    running: Mutex<HashMap<String, usize>>,
}

/// A running test's place; freed when dropped.
pub struct Slot<'a> {
    slots: &'a TestSlots,
    token_id: String,
}

impl TestSlots {
    /// A place for a test by `token_id`, or `None` when its own or every place is taken.
    pub fn take(&self, token_id: &str) -> Option<Slot<'_>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = running.values().sum();
        let own = running.get(token_id).copied().unwrap_or(0);
        if own >= PER_TOKEN || total >= OVERALL {
            return None;
        }
        running.insert(token_id.to_owned(), own + 1);
        Some(Slot {
            slots: self,
            token_id: token_id.to_owned(),
        })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.token_id) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.token_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_and_overall_bounds() {
        let slots = TestSlots::default();
        let a = [slots.take("a"), slots.take("a")];
        assert!(a.iter().all(Option::is_some));
        assert!(slots.take("a").is_none(), "a third for one token");
        let others: Vec<_> = (0..OVERALL)
            .filter_map(|i| slots.take(&format!("t{i}")))
            .collect();
        assert_eq!(others.len(), OVERALL - PER_TOKEN);
        assert!(slots.take("fresh").is_none(), "past the overall bound");
        drop(a);
        assert!(slots.take("fresh").is_some());
    }
}
