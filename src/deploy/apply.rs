//! `apply` and `apply FILE`: the phases that make load balancers serve their files, from the
//! survey to the closed sessions. Nothing changes on any host unless every host answered,
//! the plan was confirmed (or saved and still true), and the VIP keeps a host to go to.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::{
    deploy::DeployError,
    deploy::admin::{Convergence, converge_all},
    deploy::certificates::check_certificates,
    deploy::plan,
    deploy::plan::HostPlan,
    deploy::report::{HostError, HostReport, Report, Timing},
    deploy::reporter::Reporter,
    deploy::rollout::{Host, Shell, Target, go_in_waves, rollout, rollout_order},
    deploy::runtime_state::{self, for_apply},
    deploy::saved_plan::{self, Moved, PlannedHost, SavedPlan},
    deploy::standby::{Standby, holders_needing_a_standby, some_standby_ready},
    deploy::survey::{Early, SshOptions, Surveyed, survey_holding},
    remote::{self, APPLY_LOCK, Deployment, PART_END},
    render::RenderedHost,
    source::Diagnostic,
    spec::HostSpec,
    ssh::{self, RemoteOutput, Running, Session},
};

/// Why an apply changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Certificates lbctl would deploy that are not fit to be (expired, mismatched key, ...).
    #[error("{} problem{} found in the input; nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Diagnostic>),
    /// Some host could not be surveyed.
    #[error(
        "{} of {hosts} hosts could not be surveyed; nothing was changed\n{}",
        .errors.len(),
        lines(.errors)
    )]
    Unsurveyed {
        hosts: usize,
        errors: Vec<HostError>,
    },
    /// A partial apply would change the VIP holder with no load balancer to take the VIP;
    /// `why` says, per load balancer left alone, why it cannot.
    #[error(
        "refusing to change {}, which holds the VIP, without a load balancer able to take it over ({}); nothing was changed",
        .holders.join(", "),
        if .why.is_empty() { "--limit leaves no other".to_string() } else { reasons(.why) }
    )]
    NoStandby {
        holders: Vec<String>,
        why: Vec<(String, DeployError)>,
    },
    /// `apply FILE` found hosts that are no longer as the plan was made on.
    #[error(
        "the saved plan {} no longer matches {} of its {hosts} hosts; nothing was changed on any host\n  {}",
        .file.display(),
        .problems.len(),
        .problems.join("\n  ")
    )]
    StalePlan {
        file: PathBuf,
        hosts: usize,
        problems: Vec<String>,
    },
}

impl ApplyError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::NoStandby { .. } => Some("widen --limit so that another load balancer is changed first, or bring keepalived and HAProxy up on one the limit leaves out".into()),
            ApplyError::StalePlan { .. } => Some("make a new plan (`lbctl plan --out FILE`), review it, and apply that one".into()),
            ApplyError::Invalid(_) | ApplyError::Unsurveyed { .. } => None,
        }
    }
}

/// Makes every host of `hosts` serve its rendered files. The phases: survey every host;
/// check the certificates to deploy; sort the hosts (to change, to bring in line with the
/// tier's admin state, to leave); make sure a partial apply (`outside` the hosts `--limit`
/// left out) keeps a host able to take the VIP; `confirm` the plan; roll the changes out;
/// converge the admin state; close the sessions.
///
/// Each host's fetch runs in a shell that stays open for its apply script. When the apply
/// is `confirmed` in advance (`--yes`), a host to change is sent that script as soon as its
/// own survey is in, to stage and check while the others are still being surveyed (see
/// [`stage_early`]); nothing changes anywhere before every host is ready, as always.
pub async fn apply<R: Reporter>(
    hosts: &[(HostSpec, RenderedHost)],
    outside: &[HostSpec],
    ssh: &SshOptions,
    serial: usize,
    confirmed: bool,
    confirm: impl FnOnce(&Report) -> bool,
    reporter: &R,
) -> Result<Report, ApplyError> {
    let surveyed = survey_and_stage(hosts, ssh, confirmed).await;
    let surveyed = check_certificates(surveyed, hosts)
        .await
        .map_err(ApplyError::Invalid)?;
    let specs: Vec<HostSpec> = hosts.iter().map(|(spec, _)| spec.clone()).collect();
    let admin = runtime_state::from_survey(&specs, &surveyed);
    let mut sorted = Sorted::default();
    for ((s, (spec, _)), convergence) in surveyed.into_iter().zip(hosts).zip(&admin.convergences) {
        sorted.add(s, spec, &admin.tier, convergence.as_ref());
    }
    // Scripts sent early that the whole survey changed: stopped (the host removes what it
    // staged and lets go of its lock) before the right one goes over a session of its own.
    join_all(
        std::mem::take(&mut sorted.stale)
            .into_iter()
            .map(Running::finish),
    )
    .await;
    if !sorted.unreachable && !outside.is_empty() {
        let left_alone = outside
            .iter()
            .chain(specs.iter().filter(|h| !sorted.targets(&h.name)))
            .map(Standby::of)
            .collect::<Vec<_>>();
        let changing: Vec<_> = sorted
            .targets
            .iter()
            .map(|t| (t.plan.host.as_str(), t.plan.holds_vip, &t.deployment))
            .collect();
        if let Err(e) = keep_a_standby(&changing, &left_alone, ssh).await {
            sorted.close().await;
            return Err(e);
        }
    }
    let anything = !sorted.targets.is_empty() || !sorted.converging.is_empty();
    let proceed = !sorted.unreachable && anything && {
        let mut plan = Report::new("plan", sorted.planned());
        plan.runtime = admin.state.clone();
        confirm(&plan)
    };
    let mut converged = Vec::new();
    if proceed {
        let targets = std::mem::take(&mut sorted.targets);
        let (applied, used) = rollout(in_rollout_order(targets), serial, reporter).await;
        sorted.reports.splice(0..0, applied);
        sorted.sessions.extend(used);
        let converging: Vec<_> = std::mem::take(&mut sorted.converging)
            .into_iter()
            .map(|(index, session, convergence)| (&specs[index], session, convergence))
            .collect();
        converged = converge_all(&converging).await;
        sorted
            .sessions
            .extend(converging.into_iter().map(|(_, session, _)| session));
    }
    let unreachable = sorted.unreachable;
    let reports = sorted.close().await;
    let mut report = Report::new("apply", reports);
    report.runtime = admin.state;
    report.runtime.converged = converged;
    if unreachable {
        return Err(ApplyError::Unsurveyed {
            hosts: report.hosts.len(),
            errors: report.hosts.into_iter().filter_map(|h| h.error).collect(),
        });
    }
    Ok(report)
}

/// The most a host's rendered files may weigh, in all, for its apply script to go along
/// with its fetch, before lbctl knows which of them change: that script carries all of
/// them, and a larger one would cost more to send, whatever the apply changes, than the
/// round trip it saves (LAN: about 2 ms per 256 KiB at 1 Gbit/s).
const SPECULATE_UP_TO: usize = 256 << 10;

/// The survey of an apply: every host's fetch in a shell kept open for its apply script
/// and, when the apply is confirmed in advance (`early`), each changed host staged at once:
/// in the fetch's own round trip when its files are small enough (see
/// [`survey_holding`]), else as soon as its survey is in ([`stage_early`]).
async fn survey_and_stage(
    hosts: &[(HostSpec, RenderedHost)],
    ssh: &SshOptions,
    early: bool,
) -> Vec<Surveyed> {
    let options = ssh.connect();
    let connecting = Semaphore::new(ssh.forks.max(1));
    let (options, connecting) = (&options, &connecting);
    join_all(hosts.iter().map(|(spec, rendered)| async move {
        let size: usize = rendered.files.iter().map(|f| f.content.len()).sum();
        // Made as if the tier's record were empty: a host whose own record is not does not
        // run it, and is sent one after its survey (`stage_early`); where only another
        // host's record is not, the script is stopped and replaced (see `Sorted::add`).
        let speculative = (early && size <= SPECULATE_UP_TO)
            .then(|| crate::deploy::deployment::build(spec, &plan::all_new(rendered), None));
        let mut surveyed = survey_holding(spec, rendered, options, connecting, speculative).await;
        if early && surveyed.sent.is_none() {
            stage_early(spec, &mut surveyed).await;
        }
        surveyed
    }))
    .await
}

/// Sends a host whose files change its held apply script as soon as its own survey is in,
/// so that it stages and checks its files (phase 1, up to "ready") while other hosts are
/// still being logged into. The script is built from what this host alone showed: its own
/// admin record stands for the tier's. Once every host is surveyed, [`Sorted::add`]
/// compares it with the script the whole survey gives; where they differ (another host's
/// record changes this one's admin state), the early script is stopped, having changed
/// nothing, and the right one is sent instead. Like the rest of phase 1, this changes no
/// live file: every host still waits for the go-ahead, which comes only when all are ready.
async fn stage_early(spec: &HostSpec, surveyed: &mut Surveyed) {
    let Ok(plan) = &surveyed.result else { return };
    if !plan.changed() || surveyed.shell.is_none() {
        return;
    }
    let own =
        runtime_state::from_survey(std::slice::from_ref(spec), std::slice::from_ref(surveyed));
    let admin = for_apply(spec, &own.tier, own.convergences[0].as_ref());
    let deployment = crate::deploy::deployment::build(spec, plan, admin.as_ref());
    let script = remote::held_apply_script(&deployment, APPLY_LOCK);
    let Some(shell) = surveyed.shell.as_mut() else {
        return;
    };
    let since = Instant::now();
    if shell.send(&script).await.is_ok() {
        surveyed.sent = Some(Early {
            deployment,
            speculative: false,
            since,
        });
    } else if let Some(shell) = surveyed.shell.take() {
        // Half a script may have gone: this shell takes no other.
        let _ = shell.finish().await;
    }
}

/// Applies a saved plan exactly, without the inventory. The phases: connect to every host
/// and, as soon as each is connected to, in one round trip, ask whether its files are still
/// what the plan was made on and, on a host the plan changes, stage and check its files at
/// once, to wait for the go-ahead; if any host moved (or cannot be asked), stop every one,
/// nothing changed; for a plan made with `--limit`, make sure a host able to take the VIP is
/// left; then go ahead in waves, whoever holds the VIP now last; close the sessions.
pub async fn apply_saved<R: Reporter>(
    plan: &SavedPlan,
    file: &Path,
    ssh: &SshOptions,
    serial: usize,
    reporter: &R,
) -> Result<Report, ApplyError> {
    // Each host is asked as soon as it is connected to, while others are still logging in.
    let options = ssh.connect();
    let connecting = Semaphore::new(ssh.forks.max(1));
    let (options, connecting) = (&options, &connecting);
    let (connected, answers): (Vec<_>, Vec<_>) =
        join_all(plan.hosts.iter().map(|host| async move {
            let connected = saved_plan::connect(host, options, connecting).await;
            let answer = check_and_stage(host, &connected).await;
            (connected, answer)
        }))
        .await
        .into_iter()
        .unzip();
    let mut problems = Vec::new();
    let mut staged = Vec::new();
    let mut reports = Vec::new();
    for (answer, host) in answers.into_iter().zip(&plan.hosts) {
        match answer {
            Answer::Failed(e) => problems.push(format!("{}: cannot be checked: {e}", host.host)),
            Answer::Moved(moved, running) => {
                let files: Vec<String> = moved
                    .files
                    .iter()
                    .map(|(path, was, now)| {
                        format!("{path} (planned on {}, now {})", short(was), short(now))
                    })
                    .collect();
                problems.push(format!(
                    "{}: changed since the plan: {}",
                    host.host,
                    files.join(", ")
                ));
                stop(running.map(|r| *r)).await;
            }
            Answer::Unchanged(report) => reports.push(*report),
            Answer::Staged(s) => staged.push((*s, host.deployment())),
        }
    }
    let refused = if !problems.is_empty() {
        Some(ApplyError::StalePlan {
            file: file.to_path_buf(),
            hosts: plan.hosts.len(),
            problems,
        })
    } else if plan.standbys.is_empty() {
        None
    } else {
        let changing: Vec<_> = staged
            .iter()
            .map(|(s, deployment)| (s.plan.host.as_str(), s.plan.holds_vip, deployment))
            .collect();
        keep_a_standby(&changing, &plan.standbys, ssh).await.err()
    };
    if let Some(e) = refused {
        for (s, _) in staged {
            stop(Some(s.running)).await;
        }
        close(connected).await;
        return Err(e);
    }
    // The plan still holds: the staged hosts are shown, each waits for its go-ahead, in
    // rollout order (as planned, the VIP holders last).
    staged.sort_by_key(|(s, _)| s.plan.holds_vip);
    let hosts = join_all(staged.into_iter().map(|(s, _)| async move {
        let mut host = Host::checking(s.plan, s.timing, s.since, reporter);
        host.hold(Ok(s.running)).await;
        host
    }))
    .await;
    let applied = go_in_waves(hosts, serial, reporter).await;
    reports.splice(0..0, applied);
    close(connected).await;
    let mut report = Report::new("apply", reports);
    report.plan_file = Some(file.display().to_string());
    Ok(report)
}

/// One planned host's answer to phase 1 of `apply FILE`.
enum Answer {
    /// It could not be reached or asked.
    Failed(String),
    /// Some of its files are no longer as planned on; what it staged, if anything, waits.
    Moved(Moved, Option<Box<Running>>),
    /// The plan changes nothing on it.
    Unchanged(Box<HostReport>),
    /// Its files are as planned on, and its new ones being staged and checked.
    Staged(Box<Staged>),
}

/// A host whose files are as planned on, staging and checking the new ones.
struct Staged {
    plan: HostPlan,
    timing: Timing,
    /// The held apply script, on its way to waiting for the go-ahead.
    running: Running,
    /// When the host had answered whether it moved (its check's time runs from there).
    since: Instant,
}

/// Asks `host`, in one round trip, whether its files are still what the plan was made on
/// and, when the plan changes it, has it stage and check its new files right after, to
/// wait for the go-ahead (see `remote::first_part`).
async fn check_and_stage(host: &PlannedHost, connected: &saved_plan::Connected) -> Answer {
    let session = match &connected.session {
        Ok(session) => session,
        Err(e) => return Answer::Failed(e.message.clone()),
    };
    let mut timing = connected.timing;
    let deployment = host.deployment();
    let changes = !deployment.files.is_empty();
    let script = if changes {
        let held = remote::held_apply_script(&deployment, APPLY_LOCK);
        format!("{}{held}", remote::first_part(&host.check_script()))
    } else {
        host.check_script()
    };
    let started = Instant::now();
    let (checked, running) = match session.start(&script).await {
        Err(e) => return Answer::Failed(e.to_string()),
        Ok(running) if !changes => (running.finish().await.map(|out| out.stdout), None),
        Ok(mut running) => match running.read_until(PART_END.as_bytes()).await {
            Ok(true) => (Ok(running.take_output()), Some(running)),
            Ok(false) => (running.finish().await.map(|out| out.stdout), None),
            Err(e) => (Err(e), None),
        },
    };
    timing.fetch = started.elapsed().as_secs_f64();
    let asked = Instant::now();
    let moved = checked.map_err(DeployError::from).and_then(|stdout| {
        host.moved(&stdout)
            .map_err(|error| DeployError::Unreadable {
                error,
                output: RemoteOutput {
                    status: None,
                    stdout,
                    stderr: Vec::new(),
                },
            })
    });
    let moved = match moved {
        Ok(moved) => moved,
        Err(e) => {
            stop(running).await;
            return Answer::Failed(e.to_string());
        }
    };
    if !moved.files.is_empty() {
        return Answer::Moved(moved, running.map(Box::new));
    }
    let plan = host.host_plan(moved.holds_vip);
    match running {
        Some(running) => Answer::Staged(Box::new(Staged {
            plan,
            timing,
            running,
            since: asked,
        })),
        None => {
            let mut report = HostReport::planned(plan);
            report.timing = timing;
            Answer::Unchanged(Box::new(report))
        }
    }
}

/// Tells a held apply script to stop, before its go-ahead: the host keeps its files.
async fn stop(running: Option<Running>) {
    if let Some(running) = running {
        let _ = running.finish().await;
    }
}

async fn close(connected: Vec<saved_plan::Connected>) {
    ssh::close_all(connected.into_iter().filter_map(|c| c.session.ok())).await;
}

/// The hosts of an apply, sorted by what happens to them.
#[derive(Default)]
struct Sorted {
    /// Hosts whose files change.
    targets: Vec<Target>,
    /// Hosts whose files stay, but whose admin state is brought in line with the tier's
    /// record: their index in the fleet, session and convergence.
    converging: Vec<(usize, Session, Convergence)>,
    /// Every host that is not a target: unchanged, converging or unreachable.
    reports: Vec<HostReport>,
    /// Open sessions not held by a target or a converging host.
    sessions: Vec<Session>,
    /// The survey's shells that no apply script follows in: ended before their sessions
    /// close.
    idle: Vec<Running>,
    /// Shells sent a script early that turned out not to be the host's: stopped before the
    /// rollout.
    stale: Vec<Running>,
    /// Some host could not be surveyed: nothing is changed.
    unreachable: bool,
    /// How many hosts were added.
    added: usize,
}

impl Sorted {
    fn add(
        &mut self,
        s: Surveyed,
        spec: &HostSpec,
        tier: &crate::remote::Record,
        convergence: Option<&Convergence>,
    ) {
        let index = self.added;
        self.added += 1;
        let timing = s.timing;
        let shell = s.shell;
        match (s.result, s.session) {
            (Ok(plan), Some(session)) if plan.changed() => {
                let deployment = crate::deploy::deployment::build(
                    spec,
                    &plan,
                    for_apply(spec, tier, convergence).as_ref(),
                );
                let shell = match (shell, s.sent) {
                    (None, _) => Shell::None,
                    (Some(running), None) => Shell::Idle(running),
                    (Some(running), Some(early))
                        if early.stands_for(&deployment, s.fetched.as_ref()) =>
                    {
                        Shell::Sent(running, early.since)
                    }
                    (Some(running), Some(_)) => {
                        self.stale.push(running);
                        Shell::None
                    }
                };
                self.targets.push(Target {
                    deployment,
                    plan,
                    session,
                    timing,
                    shell,
                });
            }
            (Ok(plan), Some(session)) if convergence.is_some_and(Convergence::needed) => {
                self.idle.extend(shell);
                self.report(HostReport::planned(plan), timing);
                let convergence = convergence.cloned().unwrap_or_default();
                self.converging.push((index, session, convergence));
            }
            (Ok(plan), session) => {
                self.idle.extend(shell);
                self.report(HostReport::planned(plan), timing);
                self.sessions.extend(session);
            }
            (Err(e), session) => {
                self.idle.extend(shell);
                self.unreachable = true;
                self.report(HostReport::unreachable(e), timing);
                self.sessions.extend(session);
            }
        }
    }

    fn report(&mut self, mut report: HostReport, timing: Timing) {
        report.timing = timing;
        self.reports.push(report);
    }

    fn targets(&self, host: &str) -> bool {
        self.targets.iter().any(|t| t.plan.host == host)
    }

    /// Every host's plan, the targets first.
    fn planned(&self) -> Vec<HostReport> {
        self.targets
            .iter()
            .map(|t| HostReport::planned(t.plan.clone()))
            .chain(self.reports.iter().cloned())
            .collect()
    }

    /// Closes every session; returns the reports, targets that were not rolled out (a
    /// refused or declined apply) shown as planned.
    async fn close(mut self) -> Vec<HostReport> {
        for t in std::mem::take(&mut self.targets) {
            self.report(HostReport::planned(t.plan), t.timing);
            self.sessions.push(t.session);
            match t.shell {
                Shell::Idle(running) | Shell::Sent(running, _) => self.idle.push(running),
                Shell::None => {}
            }
        }
        join_all(self.idle.into_iter().chain(self.stale).map(Running::finish)).await;
        let converging = self.converging.into_iter().map(|(_, session, _)| session);
        ssh::close_all(self.sessions.into_iter().chain(converging)).await;
        self.reports
    }
}

/// A partial apply that changes a VIP holder needs a host to take the VIP while the holder
/// reloads: one it changes first (which has keepalived, and is verified before the holder
/// goes), or one of `left_alone` that is ready now. Without one, nothing is changed.
async fn keep_a_standby(
    changing: &[(&str, bool, &Deployment)],
    left_alone: &[Standby],
    ssh: &SshOptions,
) -> Result<(), ApplyError> {
    let holders = holders_needing_a_standby(changing);
    if holders.is_empty() {
        return Ok(());
    }
    some_standby_ready(left_alone, ssh)
        .await
        .map_err(|why| ApplyError::NoStandby { holders, why })
}

fn in_rollout_order(targets: Vec<Target>) -> Vec<Target> {
    let order = rollout_order(&targets.iter().map(|t| &t.plan).collect::<Vec<_>>());
    let mut slots: Vec<Option<Target>> = targets.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// A digest's first 12 characters, or `absent`.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// `host: reason; host: reason`.
fn reasons(why: &[(String, DeployError)]) -> String {
    let each: Vec<String> = why.iter().map(|(host, e)| format!("{host}: {e}")).collect();
    each.join("; ")
}

fn lines(errors: &[HostError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    lines.join("\n")
}
