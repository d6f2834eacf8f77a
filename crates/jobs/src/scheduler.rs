//! Running jobs under their leases (PL-8): on their schedules inside `serve`, or once from the
//! command line.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use rekisteri_audit::{ActorKind, AuditLog, NewEntry, SecurityEvent};
use rekisteri_core::{SharedClock, Wakeup, Woken};
use rekisteri_db::lease::{self, Lease, RunRecord};
use rekisteri_db::{DbConnection, Pool};
use time::{Duration, OffsetDateTime};

use crate::schedule::Schedule;

/// What a run did: its counts (the security event and `jobs list` show them) and the lines an
/// operator reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobReport {
    pub counts: serde_json::Map<String, serde_json::Value>,
    pub lines: Vec<String>,
}

impl JobReport {
    /// A line for the operator.
    pub fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// A count for the run's record; counts of the same name add up.
    pub fn count(&mut self, name: &str, value: u64) {
        let total = self.counts.get(name).and_then(serde_json::Value::as_u64).unwrap_or(0);
        self.counts.insert(name.to_owned(), total.saturating_add(value).into());
    }
}

/// What a job is given: its lease (for an explicit [`lease::check_fence`]) and the run's start.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub lease: Lease,
    pub started_at: OffsetDateTime,
}

pub type JobFn = dyn Fn(&RunContext) -> Result<JobReport, String> + Send + Sync;

/// A job as the scheduler knows it.
pub struct Job {
    pub name: String,
    pub schedule: Schedule,
    pub enabled: bool,
    pub run: Box<JobFn>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("schedule", &self.schedule.expression())
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SchedulerOptions {
    /// How long a lease lasts without renewal. A holder that dies loses its jobs this long
    /// after its last renewal.
    pub lease_ttl: Duration,
    /// How often a running job's lease is renewed; `None` renews never (tests, whose clock
    /// does not move by itself).
    pub renew_every: Option<std::time::Duration>,
    /// The wait after a first failure; it doubles with every failure in a row, up to
    /// `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The longest an idle job thread waits before it looks at the lease row again (another
    /// server may have died holding it, or run it).
    pub poll_max: std::time::Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::minutes(5),
            renew_every: Some(std::time::Duration::from_secs(60)),
            backoff_base: Duration::seconds(30),
            backoff_max: Duration::hours(1),
            poll_max: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("job {job} is running now (lease held by {holder} until {expires_at}); try again later")]
    Busy {
        job: String,
        holder: String,
        expires_at: String,
    },
    #[error("no job named {0}")]
    Unknown(String),
    #[error("database: {0}")]
    Db(#[from] rekisteri_db::DbError),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    /// Not due yet, or another holder runs it.
    Skipped,
    Succeeded(JobReport),
    Failed(String),
}

/// How a run was started, for its security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Command,
    /// Its [`Wakeup`] was called: there is work now (a request committed an outbox item).
    Wake,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Command => "command",
            Trigger::Wake => "wake",
        }
    }
}

/// How long a wake-up that found the lease held by another holder keeps trying: past it, that
/// holder's run or the next scheduled one has picked the work up.
const WAKE_PERSISTS: std::time::Duration = std::time::Duration::from_secs(10);
const WAKE_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// The jobs of one process under one holder id.
pub struct Scheduler {
    pool: Pool,
    clock: SharedClock,
    audit: Option<AuditLog>,
    holder: String,
    jobs: Vec<Arc<Job>>,
    /// One per job, same order: wakes its thread to run it now, and stops it.
    wakeups: Vec<Wakeup>,
    options: SchedulerOptions,
}

/// A holder id unique to this process: the leases say who holds them.
pub fn new_holder_id(prefix: &str) -> String {
    let random = rekisteri_crypto::random_bytes::<6>()
        .map(|b| rekisteri_crypto::to_hex(&b))
        .unwrap_or_default();
    format!("{prefix}-{}-{random}", std::process::id())
}

impl Scheduler {
    pub fn new(
        pool: Pool,
        clock: SharedClock,
        audit: Option<AuditLog>,
        holder: String,
        jobs: Vec<Job>,
        options: SchedulerOptions,
    ) -> Self {
        let wakeups = jobs.iter().map(|_| Wakeup::new()).collect();
        Self {
            pool,
            clock,
            audit,
            holder,
            jobs: jobs.into_iter().map(Arc::new).collect(),
            wakeups,
            options,
        }
    }

    /// Makes `wakeup` the job's (a handle made before the scheduler, e.g. for the API's state);
    /// `false` when there is no job `name`.
    pub fn set_wakeup(&mut self, name: &str, wakeup: Wakeup) -> bool {
        let position = self.jobs.iter().position(|job| job.name == name);
        match position.and_then(|i| self.wakeups.get_mut(i)) {
            Some(slot) => {
                *slot = wakeup;
                true
            }
            None => false,
        }
    }

    /// The handle that makes the spawned job `name` run now, outside its schedule (still under
    /// its lease). A call while the job runs is kept: it runs once more after.
    pub fn wakeup(&self, name: &str) -> Option<Wakeup> {
        self.jobs
            .iter()
            .position(|job| job.name == name)
            .and_then(|i| self.wakeups.get(i).cloned())
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter().map(|j| j.as_ref())
    }

    /// Runs every enabled job that is due now and free, one after the other on this thread.
    pub fn run_due(&self) -> Vec<(String, RunOutcome)> {
        self.jobs
            .iter()
            .filter(|job| job.enabled)
            .map(|job| {
                let outcome = self.run_if_due(job).unwrap_or_else(|e| {
                    log::warn!(job = job.name.as_str(); "job {}: scheduler could not reach the database: {e}", job.name);
                    RunOutcome::Failed(e.to_string())
                });
                (job.name.clone(), outcome)
            })
            .collect()
    }

    /// One scheduled attempt at `job`: runs it if it is due and its lease is free.
    pub fn run_if_due(&self, job: &Job) -> Result<RunOutcome, SchedulerError> {
        self.run_if_due_then(job, || {})
    }

    /// [`Scheduler::run_if_due`], calling `before_run` once the job is known to be due, before
    /// it runs.
    fn run_if_due_then(&self, job: &Job, before_run: impl FnOnce()) -> Result<RunOutcome, SchedulerError> {
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        if let Some(next) = job.schedule.next_after(now) {
            lease::schedule_if_unset(&mut conn, &job.name, next)?;
        }
        let Some(lease) = lease::acquire_if_due(&mut conn, &job.name, &self.holder, now, self.options.lease_ttl)?
        else {
            return Ok(RunOutcome::Skipped);
        };
        drop(conn);
        before_run();
        self.run_held(job, lease, Trigger::Schedule)
    }

    /// A woken run: now, whatever the schedule, if the lease is free; the schedule goes on as
    /// it was.
    pub fn run_woken(&self, job: &Job) -> Result<RunOutcome, SchedulerError> {
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        let Some(lease) = lease::acquire(&mut conn, &job.name, &self.holder, now, self.options.lease_ttl)? else {
            return Ok(RunOutcome::Skipped);
        };
        drop(conn);
        self.run_held(job, lease, Trigger::Wake)
    }

    /// `jobs run NAME`: runs the job now under its lease, whatever its schedule; refuses while
    /// another holder runs it. The schedule goes on as it was.
    pub fn run_now(&self, name: &str) -> Result<RunOutcome, SchedulerError> {
        let job = self
            .jobs
            .iter()
            .find(|j| j.name == name)
            .ok_or_else(|| SchedulerError::Unknown(name.to_owned()))?;
        let now = self.clock.now();
        let mut conn = self.pool.get()?;
        match lease::acquire(&mut conn, name, &self.holder, now, self.options.lease_ttl)? {
            Some(lease) => {
                drop(conn);
                self.run_held(job, lease, Trigger::Command)
            }
            None => {
                let state = lease::state(&mut conn, name)?;
                Err(SchedulerError::Busy {
                    job: name.to_owned(),
                    holder: state.as_ref().and_then(|s| s.holder.clone()).unwrap_or_default(),
                    expires_at: state
                        .and_then(|s| s.expires_at)
                        .map(|e| format!("{} UTC", e))
                        .unwrap_or_default(),
                })
            }
        }
    }

    fn run_held(&self, job: &Job, lease: Lease, trigger: Trigger) -> Result<RunOutcome, SchedulerError> {
        let started_at = self.clock.now();
        let mut conn = self.pool.get()?;
        let before = lease::state(&mut conn, &job.name)?;
        lease::record_start(&mut conn, &lease, started_at)?;
        drop(conn);
        let started = std::time::Instant::now();
        let context = RunContext {
            lease: lease.clone(),
            started_at,
        };
        let result = self.with_renewal(&lease, || lease::fenced(&lease, || (job.run)(&context)));
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let finished_at = self.clock.now();
        let previous_failures = before.as_ref().map_or(0, |s| s.failures);
        let previous_next = before.as_ref().and_then(|s| s.next_run_at).map(|t| t.assume_utc());
        let (outcome, counts, error, failures, next_run_at) = match &result {
            Ok(report) => {
                let next = match trigger {
                    Trigger::Schedule => job.schedule.next_after(finished_at),
                    Trigger::Command | Trigger::Wake => previous_next,
                };
                let failures = if trigger == Trigger::Schedule {
                    0
                } else {
                    previous_failures
                };
                (
                    "ok",
                    Some(serde_json::Value::Object(report.counts.clone()).to_string()),
                    None,
                    failures,
                    next,
                )
            }
            Err(message) => {
                let failures = previous_failures.saturating_add(1);
                let next = match trigger {
                    Trigger::Schedule => Some(finished_at + self.backoff(failures)),
                    Trigger::Command | Trigger::Wake => previous_next,
                };
                ("failed", None, Some(message.clone()), failures, next)
            }
        };
        let record = RunRecord {
            finished_at,
            outcome: outcome.to_owned(),
            counts,
            error: error.clone(),
            failures,
            next_run_at,
        };
        let mut conn = self.pool.get()?;
        if !lease::finish(&mut conn, &lease, &record)? {
            log::warn!(
                job = job.name.as_str();
                "job {}: the lease was taken during the run; its record is the new holder's",
                job.name
            );
        }
        drop(conn);
        self.security_event(job, &lease, trigger, &result, duration_ms, (started_at, finished_at));
        Ok(match result {
            Ok(report) => {
                for line in &report.lines {
                    log::info!(job = job.name.as_str(); "{}: {line}", job.name);
                }
                RunOutcome::Succeeded(report)
            }
            Err(message) => {
                log::warn!(
                    job = job.name.as_str();
                    "job {} failed ({failures} in a row), next attempt {}: {message}",
                    job.name,
                    next_run_at.map_or_else(|| "-".to_owned(), |t| t.to_string())
                );
                RunOutcome::Failed(message)
            }
        })
    }

    fn backoff(&self, failures: i32) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(20);
        let wait = self.options.backoff_base * f64::from(2_u32.saturating_pow(doublings));
        wait.min(self.options.backoff_max)
    }

    /// Runs `f` while a helper thread keeps the lease alive; a long run (a first VTJ load, a
    /// large anonymisation) thus keeps it however long it takes, and a dead process stops
    /// renewing.
    fn with_renewal<T>(&self, lease: &Lease, f: impl FnOnce() -> T) -> T {
        let Some(every) = self.options.renew_every else {
            return f();
        };
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let mut renewed = lease.clone();
            scope.spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let now = self.clock.now();
                    match self.pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
                        lease::renew(&mut conn, &mut renewed, now, self.options.lease_ttl).map_err(|e| e.to_string())
                    }) {
                        Ok(true) => {}
                        Ok(false) => {
                            log::warn!(job = renewed.job.as_str(); "job {}: lease lost; its writes will be refused", renewed.job);
                            break;
                        }
                        Err(e) => log::warn!(job = renewed.job.as_str(); "job {}: cannot renew the lease: {e}", renewed.job),
                    }
                }
            });
            let value = f();
            drop(stop);
            value
        })
    }

    fn security_event(
        &self,
        job: &Job,
        lease: &Lease,
        trigger: Trigger,
        result: &Result<JobReport, String>,
        duration_ms: u64,
        (started_at, finished_at): (OffsetDateTime, OffsetDateTime),
    ) {
        let Some(audit) = &self.audit else { return };
        let mut details = serde_json::json!({
            "job": job.name,
            "trigger": trigger.as_str(),
            "holder": lease.holder,
            "token": lease.token,
            "started_at": rekisteri_audit::format_time(rekisteri_db::to_primitive(started_at)),
            "finished_at": rekisteri_audit::format_time(rekisteri_db::to_primitive(finished_at)),
            "duration_ms": duration_ms,
        });
        match result {
            Ok(report) => {
                details["outcome"] = "ok".into();
                details["counts"] = serde_json::Value::Object(report.counts.clone());
            }
            Err(message) => {
                details["outcome"] = "failed".into();
                details["error"] = message.clone().into();
            }
        }
        let event = SecurityEvent {
            occurred_at: rekisteri_db::to_primitive(finished_at),
            organisation_id: None,
            event_type: "job_run".to_owned(),
            actor_kind: ActorKind::System,
            actor_id: Some(format!("job:{}", job.name)),
            details,
            request_id: None,
        };
        if let Err(e) = audit.append(vec![NewEntry::Security(event)]) {
            log::error!(job = job.name.as_str(); "job {}: its run could not be logged as a security event: {e}", job.name);
        }
    }

    /// Runs the enabled jobs on threads of their own until the handle is stopped. The threads
    /// start one after another, each once the one before has had its first look at the
    /// database (or after [`FIRST_LOOK_WAIT`]): started at once, each took a pooled connection
    /// at the same moment, and the pool opened one for each, which an idle server then kept
    /// (PL-16: some 0.6 MB of parsed schema per SQLite connection).
    pub fn spawn(self) -> SchedulerHandle {
        let scheduler = Arc::new(self);
        let mut threads = Vec::new();
        for (job, wakeup) in scheduler.jobs.iter().zip(&scheduler.wakeups) {
            if !job.enabled {
                continue;
            }
            let (job, wakeup) = (job.clone(), wakeup.clone());
            let scheduler = scheduler.clone();
            let name = job.name.clone();
            let waits = wakeup.clone();
            let (looked, first_look) = mpsc::channel::<()>();
            let spawned = std::thread::Builder::new()
                .name(format!("job-{name}"))
                .spawn(move || scheduler.job_loop(&job, &waits, Some(looked)));
            match spawned {
                Ok(thread) => {
                    threads.push((wakeup, thread));
                    // A job that is due reports before it runs: the others do not wait for it.
                    let _ = first_look.recv_timeout(FIRST_LOOK_WAIT);
                }
                Err(e) => log::error!("job {name}: cannot start its thread: {e}"),
            }
        }
        SchedulerHandle { threads }
    }

    fn job_loop(&self, job: &Job, wakeup: &Wakeup, mut first_look: Option<mpsc::Sender<()>>) {
        // Set while a wake-up waits for the lease that another holder has.
        let mut woken_until: Option<Instant> = None;
        loop {
            if woken_until.is_some_and(|until| Instant::now() < until) {
                match self.run_woken(job) {
                    Ok(RunOutcome::Skipped) => {}
                    Ok(_) => woken_until = None,
                    Err(e) => {
                        log::warn!(job = job.name.as_str(); "job {}: scheduler could not reach the database: {e}", job.name);
                        woken_until = None;
                    }
                }
            } else {
                woken_until = None;
            }
            let report = || {
                if let Some(looked) = first_look.take() {
                    let _ = looked.send(());
                }
            };
            if let Err(e) = self.run_if_due_then(job, report) {
                log::warn!(job = job.name.as_str(); "job {}: scheduler could not reach the database: {e}", job.name);
            }
            let mut wait = self.wait_for(job);
            if let Some(looked) = first_look.take() {
                let _ = looked.send(());
            }
            if woken_until.is_some() {
                wait = wait.min(WAKE_RETRY);
            }
            match wakeup.wait(wait) {
                Woken::TimedOut => {}
                Woken::Called => woken_until = Some(Instant::now() + WAKE_PERSISTS),
                Woken::Stopped => return,
            }
        }
    }

    /// Until the job is next due, but at most `poll_max` and at least a moment, so that a
    /// clock or database hiccup does not spin.
    fn wait_for(&self, job: &Job) -> std::time::Duration {
        let now = self.clock.now();
        let next = self
            .pool
            .get()
            .ok()
            .and_then(|mut conn| lease::state(&mut conn, &job.name).ok().flatten())
            .and_then(|s| s.next_run_at)
            .map(|t| t.assume_utc());
        let until = next.map_or(self.options.poll_max, |next| {
            std::time::Duration::try_from(next - now).unwrap_or(std::time::Duration::ZERO)
        });
        until.clamp(std::time::Duration::from_millis(200), self.options.poll_max)
    }
}

/// How long [`Scheduler::spawn`] waits for a job's first look at the database before it starts
/// the next job's thread.
const FIRST_LOOK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The running scheduler; [`SchedulerHandle::stop`] ends it.
pub struct SchedulerHandle {
    threads: Vec<(Wakeup, JoinHandle<()>)>,
}

impl SchedulerHandle {
    /// Tells every job thread to stop and waits for those that are idle or finish a run within
    /// `grace`; a run still going after that is left to the process's exit (its transactions
    /// commit whole or not at all, and its lease expires).
    pub fn stop(self, grace: std::time::Duration) {
        let deadline = std::time::Instant::now() + grace;
        let mut running = Vec::new();
        for (wakeup, thread) in self.threads {
            wakeup.stop();
            running.push(thread);
        }
        for thread in running {
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if thread.is_finished() {
                if thread.join().is_err() {
                    log::error!("a job thread panicked");
                }
            } else {
                log::warn!("a job was still running at shutdown; its lease expires by itself");
            }
        }
    }
}

/// The lease operations on a fresh connection of the pool, for `jobs list`.
pub fn job_states(conn: &mut DbConnection) -> Result<Vec<lease::JobState>, SchedulerError> {
    Ok(lease::list(conn)?)
}
