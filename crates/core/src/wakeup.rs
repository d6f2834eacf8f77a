//! A wake-up call between threads: one side says "there is work" (a request committed an
//! outbox item), the other waits for it or for a timeout (a job's next scheduled run). Calls made
//! while nobody waits are kept (coalesced into one), so a wake-up between two waits is not lost.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct State {
    woken: bool,
    stopped: bool,
}

/// A cheap, cloneable handle; every clone wakes and waits on the same signal.
#[derive(Debug, Clone, Default)]
pub struct Wakeup {
    inner: Arc<(Mutex<State>, Condvar)>,
}

/// Why [`Wakeup::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Someone called [`Wakeup::wake`] (since the last wait, or during this one).
    Called,
    TimedOut,
    /// [`Wakeup::stop`] was called: the waiter should end.
    Stopped,
}

impl Wakeup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the waiter now, or its next wait.
    pub fn wake(&self) {
        let (lock, condvar) = &*self.inner;
        lock.lock().unwrap_or_else(PoisonError::into_inner).woken = true;
        condvar.notify_all();
    }

    /// Ends every wait, now and later.
    pub fn stop(&self) {
        let (lock, condvar) = &*self.inner;
        lock.lock().unwrap_or_else(PoisonError::into_inner).stopped = true;
        condvar.notify_all();
    }

    /// Waits until woken, stopped or `timeout` has passed; a wake-up is consumed.
    pub fn wait(&self, timeout: Duration) -> Woken {
        let (lock, condvar) = &*self.inner;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.stopped {
                return Woken::Stopped;
            }
            if state.woken {
                state.woken = false;
                return Woken::Called;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Woken::TimedOut;
            }
            state = condvar
                .wait_timeout(state, left)
                .map(|(state, _)| state)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pl_8_a_wake_up_before_the_wait_is_kept_once_and_stop_ends_every_wait() {
        let wakeup = Wakeup::new();
        assert_eq!(wakeup.wait(Duration::ZERO), Woken::TimedOut);
        wakeup.wake();
        wakeup.wake();
        assert_eq!(wakeup.wait(Duration::ZERO), Woken::Called);
        assert_eq!(
            wakeup.wait(Duration::ZERO),
            Woken::TimedOut,
            "two calls coalesce into one"
        );
        let other = wakeup.clone();
        let waiter = std::thread::spawn(move || other.wait(Duration::from_secs(60)));
        wakeup.wake();
        assert_eq!(waiter.join().unwrap(), Woken::Called);
        wakeup.stop();
        assert_eq!(wakeup.wait(Duration::from_secs(60)), Woken::Stopped);
    }
}
