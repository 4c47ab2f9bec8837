//! Work shared by identical requests in flight at the same time: the first one runs it, the
//! others wait for its result. Nothing is kept once the work is done (not a cache: an answer
//! is never older than the request that asked for it, less the time the work was running).
//!
//! When the request running the work goes away (its client hung up), another waiting one
//! runs it (`tokio::sync::OnceCell`'s rule).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Work in flight, by key.
pub struct InFlight<V> {
    running: Mutex<HashMap<String, Arc<OnceCell<V>>>>,
}

impl<V> Default for InFlight<V> {
    fn default() -> Self {
        InFlight { running: Mutex::new(HashMap::new()) }
    }
}

impl<V: Clone> InFlight<V> {
    /// `work()`'s result, run once for all the callers with this `key` at the same time.
    pub async fn run<F: Future<Output = V>>(&self, key: String, work: impl FnOnce() -> F) -> V {
        let cell = {
            let mut running = self.running.lock().expect("in-flight lock");
            running.entry(key.clone()).or_insert_with(|| Arc::new(OnceCell::new())).clone()
        };
        let value = cell.get_or_init(work).await.clone();
        let mut running = self.running.lock().expect("in-flight lock");
        if running.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            running.remove(&key);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn callers_at_the_same_time_share_one_run_and_later_ones_run_again() {
        let flight: InFlight<usize> = InFlight::default();
        let runs = AtomicUsize::new(0);
        let work = || async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            runs.fetch_add(1, Ordering::SeqCst) + 1
        };
        let (a, b, c) =
            tokio::join!(flight.run("k".into(), work), flight.run("k".into(), work), flight.run("other".into(), work));
        assert_eq!(a, b, "one run for the two callers of k");
        assert_ne!(a, c, "another key runs on its own");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(flight.run("k".into(), work).await, 3, "done work is not kept");
        assert!(flight.running.lock().unwrap().is_empty());
    }
}
