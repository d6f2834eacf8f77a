//! The periodic jobs (PL-8): their configuration (`[jobs]`), the scheduler that `serve` runs,
//! `jobs run NAME` under the same lease, and `jobs list`.

use std::sync::Arc;

use rekisteri_core::SharedClock;
use rekisteri_jobs::{Job, JobReport, RunOutcome, Schedule, Scheduler, SchedulerError, SchedulerOptions};
use serde::Deserialize;

use crate::config::{Config, ConfigError};
use crate::{Failure, JobName, Runtime, open_and_migrate, open_runtime, runtime, usage};

/// Every job, in the order `jobs list` shows them.
const JOBS: [JobName; 7] = [
    JobName::Outbox,
    JobName::Notifications,
    JobName::Retention,
    JobName::Anonymise,
    JobName::Inactivity,
    JobName::RegistryUseRights,
    JobName::VtjSync,
];

fn name_of(job: JobName) -> &'static str {
    match job {
        JobName::Retention => "retention",
        JobName::Anonymise => "anonymise",
        JobName::Inactivity => "inactivity",
        JobName::RegistryUseRights => "registry-use-rights",
        JobName::Outbox => "outbox",
        JobName::Notifications => "notifications",
        JobName::VtjSync => "vtj-sync",
    }
}

/// `[jobs]` in the configuration file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsFileConfig {
    /// `false` keeps the scheduler of this server off (cron and `jobs run` then do the work).
    enabled: Option<bool>,
    /// How long a lease lasts unrenewed: a server that dies loses its jobs after this.
    lease_ttl_secs: Option<u64>,
    outbox: Option<JobFileConfig>,
    notifications: Option<JobFileConfig>,
    retention: Option<JobFileConfig>,
    anonymise: Option<JobFileConfig>,
    inactivity: Option<JobFileConfig>,
    #[serde(rename = "registry-use-rights")]
    registry_use_rights: Option<JobFileConfig>,
    #[serde(rename = "vtj-sync")]
    vtj_sync: Option<JobFileConfig>,
}

/// `[jobs.NAME]`: the job's cron expression (Finnish time) and whether it runs on schedule.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFileConfig {
    schedule: Option<String>,
    enabled: Option<bool>,
}

/// One job's effective settings.
#[derive(Debug, Clone)]
pub struct JobSetting {
    pub job: JobName,
    pub schedule: Schedule,
    pub enabled: bool,
}

impl std::fmt::Debug for JobName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(name_of(*self))
    }
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub enabled: bool,
    pub lease_ttl: time::Duration,
    pub jobs: Vec<JobSetting>,
}

impl JobsConfig {
    pub fn from_file(file: JobsFileConfig) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { name: "jobs", message };
        let lease_ttl_secs = file.lease_ttl_secs.unwrap_or(300);
        // A few seconds only for tests of takeover; in production minutes, so that a slow
        // database does not cost a running job its lease.
        if !(5..=86_400).contains(&lease_ttl_secs) {
            return Err(invalid("lease_ttl_secs must be 5-86400".to_owned()));
        }
        let mut jobs = Vec::new();
        for job in JOBS {
            let name = name_of(job);
            let setting = match job {
                JobName::Outbox => &file.outbox,
                JobName::Notifications => &file.notifications,
                JobName::Retention => &file.retention,
                JobName::Anonymise => &file.anonymise,
                JobName::Inactivity => &file.inactivity,
                JobName::RegistryUseRights => &file.registry_use_rights,
                JobName::VtjSync => &file.vtj_sync,
            }
            .clone()
            .unwrap_or_default();
            let expression = match setting.schedule {
                Some(expression) => expression,
                None => rekisteri_jobs::default_schedule(name)
                    .ok_or_else(|| invalid(format!("{name}: no default schedule")))?
                    .to_owned(),
            };
            let schedule = Schedule::parse(&expression).map_err(|e| invalid(format!("{name}: {e}")))?;
            jobs.push(JobSetting {
                job,
                schedule,
                enabled: setting.enabled.unwrap_or(true),
            });
        }
        Ok(Self {
            enabled: file.enabled.unwrap_or(true),
            lease_ttl: time::Duration::seconds(lease_ttl_secs.cast_signed()),
            jobs,
        })
    }

    /// The `[jobs]` part of `config check`.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "\n[jobs]\nenabled = {}\nlease_ttl_secs = {}\n",
            self.enabled,
            self.lease_ttl.whole_seconds()
        );
        for setting in &self.jobs {
            out.push_str(&format!(
                "\n[jobs.{}]\nschedule = {:?}\nenabled = {}\n",
                name_of(setting.job),
                setting.schedule.expression(),
                setting.enabled
            ));
        }
        out
    }
}

/// Runs one job with the process's runtime; the report is the job's lines and counts.
fn run_job(job: JobName, config: &Config, rt: &Runtime) -> Result<JobReport, Failure> {
    let mut report = JobReport::default();
    match job {
        JobName::Retention => crate::retention(config, rt, &mut report)?,
        JobName::Anonymise => crate::anonymise(rt, &mut report)?,
        JobName::Inactivity => crate::inactivity(rt, &mut report)?,
        JobName::RegistryUseRights => crate::registry_use_rights(rt, &mut report)?,
        JobName::Outbox => crate::will_service_outbox(rt, &mut report)?,
        JobName::Notifications => crate::notifications(config, rt, &mut report)?,
        JobName::VtjSync => crate::vtj::sync_job(rt, &mut report)?,
    }
    Ok(report)
}

fn scheduler_jobs(config: &Config, rt: &Runtime, only: Option<JobName>) -> Vec<Job> {
    let will_service = std::env::var("REKISTERI_WILL_SERVICE_URL").is_ok_and(|u| !u.trim().is_empty());
    config
        .jobs
        .jobs
        .iter()
        .filter(|s| only.is_none_or(|only| only == s.job))
        .map(|setting| {
            let (job, config, rt) = (setting.job, Arc::new(config.clone()), rt.clone());
            // Without a will service to forward to, the outbox would only fail every ten seconds;
            // without a mail relay, the notifications stay in their outbox.
            let configured = match job {
                JobName::Outbox => will_service,
                JobName::Notifications => config.smtp.is_some(),
                _ => true,
            };
            let enabled = setting.enabled && (configured || only.is_some());
            Job {
                name: name_of(job).to_owned(),
                schedule: setting.schedule.clone(),
                enabled,
                run: Box::new(move |_| run_job(job, &config, &rt).map_err(|f| f.message)),
            }
        })
        .collect()
}

fn scheduler(config: &Config, rt: &Runtime, holder: String, only: Option<JobName>) -> Scheduler {
    Scheduler::new(
        rt.pool.clone(),
        rt.clock.clone() as SharedClock,
        Some(rt.audit.clone()),
        holder,
        scheduler_jobs(config, rt, only),
        SchedulerOptions {
            lease_ttl: config.jobs.lease_ttl,
            renew_every: u64::try_from(config.jobs.lease_ttl.whole_seconds() / 3)
                .ok()
                .map(std::time::Duration::from_secs),
            ..SchedulerOptions::default()
        },
    )
}

/// Starts the scheduler of `serve`, unless `[jobs] enabled = false`. `outbox_wakeup` becomes
/// the outbox job's: the API calls it after a request queued an item for the will service.
pub fn start(
    config: &Config,
    rt: &Runtime,
    outbox_wakeup: &rekisteri_core::Wakeup,
) -> Option<rekisteri_jobs::SchedulerHandle> {
    if !config.jobs.enabled {
        log::info!("scheduler off ([jobs] enabled = false): run the jobs with `rekisteri jobs run`");
        return None;
    }
    let mut scheduler = scheduler(config, rt, rekisteri_jobs::new_holder_id("serve"), None);
    scheduler.set_wakeup(name_of(JobName::Outbox), outbox_wakeup.clone());
    for job in scheduler.jobs() {
        if job.enabled {
            log::info!(
                "job {} scheduled at '{}' (Europe/Helsinki)",
                job.name,
                job.schedule.expression()
            );
        } else {
            log::info!("job {} not scheduled", job.name);
        }
    }
    Some(scheduler.spawn())
}

/// `jobs run NAME`: one run now under the job's lease.
pub fn run(config: &Config, job: JobName) -> Result<(), Failure> {
    if job == JobName::Outbox && std::env::var("REKISTERI_WILL_SERVICE_URL").is_err() {
        return Err(usage(
            "set REKISTERI_WILL_SERVICE_URL to the will service's recording endpoint",
        ));
    }
    if job == JobName::Notifications && config.smtp.is_none() {
        return Err(usage(
            "configure the mail relay ([smtp] host and sender, or REKISTERI_SMTP_HOST and REKISTERI_SMTP_SENDER)",
        ));
    }
    let rt = open_runtime(config)?;
    let scheduler = scheduler(config, &rt, rekisteri_jobs::new_holder_id("cli"), Some(job));
    match scheduler.run_now(name_of(job)) {
        Ok(RunOutcome::Succeeded(report)) => {
            for line in &report.lines {
                println!("{line}");
            }
            Ok(())
        }
        Ok(RunOutcome::Failed(message)) => Err(runtime(message)),
        Ok(RunOutcome::Skipped) => Err(runtime("the job did not run")),
        Err(e @ SchedulerError::Busy { .. }) => Err(runtime(e)),
        Err(e) => Err(runtime(e)),
    }
}

/// `jobs list`: what the leases table says of every job, with its schedule here.
pub fn list(config: &Config) -> Result<(), Failure> {
    let pool = open_and_migrate(config)?;
    let states = rekisteri_jobs::job_states(&mut *pool.get().map_err(runtime)?).map_err(runtime)?;
    let now = time::OffsetDateTime::now_utc();
    let at = |t: Option<time::PrimitiveDateTime>| t.map_or_else(|| "-".to_owned(), |t| format!("{t} UTC"));
    println!(
        "{:<20} {:<16} {:<30} {:<8} {:<30} now",
        "job", "schedule", "last run", "outcome", "next run"
    );
    for setting in &config.jobs.jobs {
        let name = name_of(setting.job);
        let state = states.iter().find(|s| s.job == name);
        let schedule = if setting.enabled && config.jobs.enabled {
            setting.schedule.expression().to_owned()
        } else {
            "off".to_owned()
        };
        let running = state
            .filter(|s| s.held_at(now))
            .and_then(|s| s.holder.clone())
            .map_or_else(String::new, |holder| format!("running ({holder})"));
        println!(
            "{:<20} {:<16} {:<30} {:<8} {:<30} {}",
            name,
            schedule,
            at(state.and_then(|s| s.last_started_at)),
            state
                .and_then(|s| s.last_outcome.clone())
                .unwrap_or_else(|| "-".to_owned()),
            at(state.and_then(|s| s.next_run_at)),
            running
        );
        if let Some(state) = state {
            if let Some(counts) = &state.last_counts {
                println!("    counts {counts}");
            }
            if let Some(error) = state
                .last_error
                .as_ref()
                .filter(|_| state.last_outcome.as_deref() == Some("failed"))
            {
                println!("    error ({} failures in a row): {error}", state.failures);
            }
        }
    }
    Ok(())
}
