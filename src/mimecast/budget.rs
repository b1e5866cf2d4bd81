//! The request budget: a cap on our own request rate to the Mimecast API, per client id, shared
//! by every instance and source of the process, applied before a request leaves.
//!
//! One Mimecast application (client id) is often shared with other tools, and Mimecast's limits
//! count all of them together. Reacting to 429 (the gate in `client`) keeps us correct; the
//! budget keeps us polite: with `requests_per_second` set, requests of one client id leave at
//! least `1 / rate` seconds apart (a slot schedule with no burst), whatever the number of
//! instances and streams. When live instances of one client id configure different rates, the
//! lowest applies to all of them; an instance without a rate follows the others' budget.
//! Token requests count; pre-signed batch-file downloads do not (they go to storage, not to the
//! API gateway, and carry no client id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Shared {
    /// The next free slot, and the rates of the live registrations (None: no cap of its own).
    state: Mutex<SharedState>,
}

#[derive(Default)]
struct SharedState {
    next_slot: Option<Instant>,
    rates: Vec<f64>,
}

impl SharedState {
    /// The interval between two requests under the strictest live budget, if any.
    fn interval(&self) -> Option<Duration> {
        let rate = self.rates.iter().copied().fold(f64::INFINITY, f64::min);
        (rate.is_finite() && rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate))
    }
}

/// One client's registration with its client id's budget; dropping it withdraws its rate.
pub struct Budget {
    shared: Arc<Shared>,
    rate: Option<f64>,
}

impl Budget {
    /// Joins the budget of `key` (one per gateway and client id), with this client's own
    /// `rate` in requests per second, or None to follow the others'.
    pub fn join(key: &str, rate: Option<f64>) -> Budget {
        static BUDGETS: OnceLock<Mutex<HashMap<String, Arc<Shared>>>> = OnceLock::new();
        let shared = BUDGETS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        if let Some(r) = rate {
            shared.lock().rates.push(r);
        }
        Budget { shared, rate }
    }

    /// Waits for the next free slot of the budget; returns how long it waited (zero without a
    /// budget, or when the slot was free).
    pub async fn take(&self) -> Duration {
        let now = Instant::now();
        let wait = self.reserve(now).map_or(Duration::ZERO, |slot| slot - now);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Books the next free slot at or after `now`: None without a budget.
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let mut s = self.shared.lock();
        let interval = s.interval()?;
        let slot = s.next_slot.map_or(now, |n| n.max(now));
        s.next_slot = Some(slot + interval);
        Some(slot)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        if let Some(r) = self.rate {
            let mut s = self.shared.lock();
            if let Some(i) = s.rates.iter().position(|x| *x == r) {
                s.rates.swap_remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn slots_are_spaced_by_the_strictest_live_rate() {
        let key = "test|slots";
        let t0 = Instant::now();
        let at = |slot: Option<Instant>| slot.map(|s| ms(s - t0));
        let loose = Budget::join(key, Some(10.0));
        let follower = Budget::join(key, None);
        // 10/s: the first request leaves at once, the next ones 100 ms apart, even when they
        // ask at the same instant.
        assert_eq!(at(loose.reserve(t0)), Some(0));
        assert_eq!(at(follower.reserve(t0)), Some(100));
        assert_eq!(at(loose.reserve(t0)), Some(200));
        // A stricter instance joins: 2/s for everyone, the follower and the loose one too.
        let strict = Budget::join(key, Some(2.0));
        assert_eq!(at(follower.reserve(t0)), Some(300));
        assert_eq!(at(loose.reserve(t0)), Some(800));
        assert_eq!(at(strict.reserve(t0)), Some(1300));
        // It leaves: back to 10/s. After a quiet spell nothing is saved up (no burst).
        drop(strict);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(at(follower.reserve(later)), Some(10_000));
        assert_eq!(at(loose.reserve(later)), Some(10_100));
        // The last rate leaves: nobody waits.
        drop(loose);
        assert_eq!(follower.reserve(later), None);
    }

    #[test]
    fn budgets_of_different_client_ids_are_apart() {
        let t0 = Instant::now();
        let a = Budget::join("test|a", Some(1.0));
        let b = Budget::join("test|b", Some(1.0));
        assert_eq!(a.reserve(t0), Some(t0));
        assert_eq!(b.reserve(t0), Some(t0));
        assert_eq!(a.reserve(t0), Some(t0 + Duration::from_secs(1)));
    }
}
