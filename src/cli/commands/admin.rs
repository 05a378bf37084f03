//! `lbctl drain|maint|ready|weight`: a worker's servers on every load balancer at once.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::Global;
use crate::{
    cli::Error,
    deploy::{self, AdminReport, Left, Request, Stamp},
    drill::run_id,
    remote::Setting,
    spec::{Worker, host_connection},
};

#[derive(Debug, Clone)]
pub struct AdminOptions {
    pub worker: String,
    pub backends: Vec<String>,
    pub setting: Setting,
    pub force: bool,
    pub reason: Option<String>,
    /// `drain --wait`: how long to wait for the worker's sessions to end.
    pub wait: Option<Duration>,
}

/// How often `--wait` counts the sessions left.
const POLL_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub report: AdminReport,
    /// `drain --wait`: how the wait ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<Waited>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Waited {
    /// Every load balancer counted 0 sessions to the worker.
    pub drained: bool,
    pub seconds: f64,
    pub timeout_seconds: f64,
    /// The last count, per load balancer.
    pub left: Vec<Left>,
}

/// What `--wait` shows: what the change did, as soon as it is done (the wait may be long),
/// then the sessions left on each load balancer while it waits.
pub trait WaitReporter {
    fn changed(&self, report: &AdminReport);
    fn sessions_left(&self, left: &[Left], elapsed: Duration);
}

/// Sets the worker's servers to `opts.setting` on every load balancer, then (with `--wait`)
/// waits for its sessions to end, telling `reporter` as it goes.
pub fn run(
    global: &Global,
    opts: &AdminOptions,
    reporter: &dyn WaitReporter,
) -> Result<Outcome, Error> {
    let loaded = global.load()?;
    let connection = host_connection(&loaded.templar, &opts.worker, "worker")?;
    let mut backends = opts.backends.clone();
    backends.sort();
    backends.dedup();
    let placements = Worker::of(&connection).placements(&loaded.fleet, &backends)?;
    let request = Request {
        worker: opts.worker.clone(),
        placements,
        setting: opts.setting,
        force: opts.force,
        stamp: Stamp {
            since: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            run: run_id(),
            who: who(),
            reason: opts.reason.clone().unwrap_or_default(),
        },
    };
    super::runtime()?.block_on(async {
        let (report, sessions) = deploy::change_admin(&loaded.fleet, &request, &global.ssh).await?;
        let mut outcome = Outcome { report, wait: None };
        if let Some(limit) = opts.wait {
            reporter.changed(&outcome.report);
            let started = Instant::now();
            let waited = loop {
                let left =
                    deploy::count_sessions(&loaded.fleet, &sessions, &request.placements).await;
                reporter.sessions_left(&left, started.elapsed());
                let drained = left.iter().all(|l| matches!(l.sessions, Ok(0)));
                if drained || started.elapsed() >= limit {
                    break Waited {
                        drained,
                        seconds: started.elapsed().as_secs_f64(),
                        timeout_seconds: limit.as_secs_f64(),
                        left,
                    };
                }
                tokio::time::sleep(POLL_EVERY).await;
            };
            outcome.wait = Some(waited);
        }
        deploy::close_admin(sessions).await;
        Ok(outcome)
    })
}

/// Who runs lbctl, for the record: `user@machine` (the user sudo ran it for, if any).
fn who() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| plausible_user(v)))
        .or_else(user_name)
        .unwrap_or_else(|| "?".to_string());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

/// Whether an environment variable's value can be the user's name in the record, which
/// `status` and `plan` show to whoever runs them later: one short line of plain text, as a
/// `--reason` is (`USER=$'\e]2;...'` reached their terminals, a 100 KiB one every line).
fn plausible_user(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control)
}

/// The name of the user lbctl runs as, from the password database.
fn user_name() -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes only into `entry` and `buffer`, whose sizes it is given.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let status = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points to a NUL-terminated string inside `buffer`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_short_line_of_plain_text_is_taken_for_a_user_name() {
        assert!(plausible_user("alice") && plausible_user("svc-deploy.ci"));
        for hostile in ["", "al\nice", "\u{1b}]2;owned\u{7}", &"x".repeat(65)] {
            assert!(!plausible_user(hostile), "{hostile:?}");
        }
        assert!(!who().chars().any(char::is_control));
    }
}
