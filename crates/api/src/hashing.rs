//! The password-hashing pool: a few threads of their own for PBKDF2, so that password work
//! (600 000 iterations a check) never takes the threads and connections of database work. Its
//! queue is bounded: when every thread is busy and the queue is full, a request is refused at
//! with 503 and `Retry-After` (after a short pause on a timer, see [`BUSY_PAUSE`]) rather than
//! waiting (and piling up) behind the others.
//!
//! A request takes its place before its database work ([`HashingPool::reserve`]), so the
//! pool's size also bounds how many password requests (logins, invitation acceptances, bogus
//! ones included) hold database connections at once: a flood of them is shed at once and never
//! queues in front of other requests for the blocking threads and the connection pool.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::problem::ApiError;

/// Seconds a refused request is told to wait.
pub const RETRY_AFTER_SECONDS: i64 = 1;

/// How long a request waits for a place (on a timer, costing no CPU) before it is refused: a
/// place often frees within it, and a client that floods the pool in a loop gets at most a few
/// answers a second per connection instead of as many as the CPU can write.
pub const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Shared {
    /// Jobs reserved, queued or running.
    in_flight: AtomicUsize,
    capacity: usize,
    /// Jobs run to their end.
    completed: AtomicU64,
}

/// A handle to the pool (cheap to clone); the threads end when the last handle is dropped.
#[derive(Clone)]
pub struct HashingPool {
    sender: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    threads: usize,
}

impl std::fmt::Debug for HashingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingPool")
            .field("threads", &self.threads)
            .field("capacity", &self.shared.capacity)
            .finish()
    }
}

/// The default number of threads: half the CPUs, at least one, so that hashing never takes
/// every core from the rest of the service.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The default queue: a few jobs per thread (each waits at most a few checks' time).
pub const DEFAULT_QUEUE: usize = 8;

impl HashingPool {
    /// A pool of `threads` threads (at least one) and room for `queue` jobs waiting for one.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("hashing-{n}"))
                .spawn(move || {
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            sender,
            shared: Arc::new(Shared {
                in_flight: AtomicUsize::new(0),
                capacity: threads + queue,
                completed: AtomicU64::new(0),
            }),
            threads,
        })
    }

    /// Reserves a place for one job, or refuses at once (503 with `Retry-After`) when every
    /// thread is busy and the queue is full.
    pub fn reserve(&self) -> Result<Reservation, ApiError> {
        let taken = self
            .shared
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.shared.capacity).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Reservation {
                pool: self.clone(),
                released: false,
            }),
            Err(_) => Err(ApiError::Busy {
                retry_after_seconds: RETRY_AFTER_SECONDS,
            }),
        }
    }

    /// [`HashingPool::reserve`], after waiting [`BUSY_PAUSE`] for a place when the pool is full.
    pub async fn reserve_waiting(&self) -> Result<Reservation, ApiError> {
        match self.reserve() {
            Ok(reservation) => Ok(reservation),
            Err(_) => {
                actix_web::rt::time::sleep(BUSY_PAUSE).await;
                self.reserve()
            }
        }
    }

    /// How many jobs have run (for tests: whether a request hashed anything).
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Acquire)
    }

    /// Runs `work` on the pool; refused like [`HashingPool::reserve`] when full.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.reserve()?.run(work).await
    }
}

/// A place in the pool, held from before the request's database work until its hashing is done;
/// dropping it unused gives the place back.
pub struct Reservation {
    pool: HashingPool,
    released: bool,
}

impl Reservation {
    /// Runs `work` on one of the pool's threads and waits for it without blocking the executor.
    pub async fn run<T, F>(mut self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(Slot {
            value: None,
            waker: None,
            done: false,
        }));
        let filled = slot.clone();
        let shared = self.pool.shared.clone();
        let job: Job = Box::new(move || {
            // A panicking job leaves its thread running and its request an error.
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).ok();
            shared.completed.fetch_add(1, Ordering::AcqRel);
            shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            if let Ok(mut slot) = filled.lock() {
                slot.value = value;
                slot.done = true;
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        });
        // From here the job gives the place back when it has run.
        self.released = true;
        if self.pool.sender.send(job).is_err() {
            self.pool.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::internal("the hashing pool has stopped"));
        }
        Done { slot }
            .await
            .ok_or_else(|| ApiError::internal("a hashing job failed"))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.released {
            self.pool.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
    done: bool,
}

/// Resolves when the job has run (`None` if it panicked).
struct Done<T> {
    slot: Arc<Mutex<Slot<T>>>,
}

impl<T> Future for Done<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A poisoned lock means the job panicked while filling the slot.
        let Ok(mut slot) = self.slot.lock() else {
            return Poll::Ready(None);
        };
        if slot.done {
            return Poll::Ready(slot.value.take());
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_refuses_at_once_and_a_finished_job_frees_its_place() {
        let pool = HashingPool::new(1, 0).unwrap();
        let first = pool.reserve().unwrap();
        assert!(matches!(
            pool.reserve(),
            Err(ApiError::Busy {
                retry_after_seconds: RETRY_AFTER_SECONDS
            })
        ));
        drop(first);
        let value = actix_web::rt::System::new().block_on(pool.run(|| 6 * 7)).unwrap();
        assert_eq!(value, 42);
        assert_eq!(pool.completed(), 1);
        assert!(pool.reserve().is_ok());
    }
}
