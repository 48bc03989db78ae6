//! Long runs started from this console that the operator may ask to stop: a data-subject
//! request's run (an erasure above all) and a retention run. Asking only raises a flag; the run
//! reads it at its next step or chunk and stops there, exactly as a killed run would, so the
//! next run resumes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Which run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RunKey {
    /// The run of this data-subject request (by id).
    Request(String),
    /// This console's retention run.
    Retention,
}

/// The runs under way on this console, each with its stop flag.
#[derive(Debug, Default)]
pub struct Stops {
    runs: Mutex<HashMap<RunKey, Arc<AtomicBool>>>,
}

impl Stops {
    /// Registers a run for as long as the returned guard lives.
    pub fn start(&self, key: RunKey) -> RunGuard<'_> {
        let flag = Arc::new(AtomicBool::new(false));
        self.lock().insert(key.clone(), flag.clone());
        RunGuard {
            stops: self,
            key,
            flag,
        }
    }

    /// Asks the run to stop; `false` when no such run is under way on this console.
    pub fn request(&self, key: &RunKey) -> bool {
        match self.lock().get(key) {
            Some(flag) => {
                flag.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunKey, Arc<AtomicBool>>> {
        // A panic while holding this lock leaves the map whole: carry on with it.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A run's registration; dropping it (the run ended, however) forgets the run.
#[derive(Debug)]
pub struct RunGuard<'a> {
    stops: &'a Stops,
    key: RunKey,
    flag: Arc<AtomicBool>,
}

impl RunGuard<'_> {
    /// Whether the operator asked this run to stop.
    pub fn stop_requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let mut runs = self.stops.lock();
        // Only this run's own entry: a later run of the same key registered its own flag.
        if runs
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flag))
        {
            runs.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_reaches_only_the_run_under_way() {
        let stops = Stops::default();
        let key = RunKey::Request("r1".into());
        assert!(!stops.request(&key), "nothing runs yet");
        let run = stops.start(key.clone());
        assert!(!run.stop_requested());
        assert!(
            !stops.request(&RunKey::Retention),
            "another run is not this one"
        );
        assert!(!run.stop_requested());
        assert!(stops.request(&key));
        assert!(run.stop_requested());
        drop(run);
        assert!(!stops.request(&key), "the run ended: nothing to stop");
        // A new run of the same request starts with its flag down.
        let again = stops.start(key);
        assert!(!again.stop_requested());
    }

    #[test]
    fn an_old_guard_does_not_forget_a_newer_run() {
        let stops = Stops::default();
        let first = stops.start(RunKey::Retention);
        let second = stops.start(RunKey::Retention);
        drop(first);
        assert!(
            stops.request(&RunKey::Retention),
            "the newer run is still registered"
        );
        assert!(second.stop_requested());
    }
}
