//! `apply` and `apply FILE`: the phases that make load balancers serve their files, from the
//! survey to the closed sessions. Nothing changes on any host unless every host answered,
//! the plan was confirmed (or saved and still true), and the VIP keeps a host to go to.

use std::path::{Path, PathBuf};

use crate::{
    deploy::admin::{Convergence, converge_all},
    deploy::certificates::check_certificates,
    deploy::plan::HostPlan,
    deploy::report::{HostError, HostReport, Report, Timing},
    deploy::reporter::Reporter,
    deploy::rollout::{Target, rollout, rollout_order},
    deploy::runtime_state::{self, for_apply},
    deploy::saved_plan::{self, SavedPlan},
    deploy::standby::{Standby, holders_needing_a_standby, some_standby_ready},
    deploy::survey::{SshOptions, Surveyed, survey},
    render::RenderedHost,
    source::Diagnostic,
    spec::HostSpec,
    ssh::{self, Session},
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
        if .why.is_empty() { "--limit leaves no other".to_string() } else { .why.join("; ") }
    )]
    NoStandby {
        holders: Vec<String>,
        why: Vec<String>,
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
pub async fn apply<R: Reporter>(
    hosts: &[(HostSpec, RenderedHost)],
    outside: &[HostSpec],
    ssh: &SshOptions,
    serial: usize,
    confirm: impl FnOnce(&Report) -> bool,
    reporter: &R,
) -> Result<Report, ApplyError> {
    let surveyed = survey(hosts, ssh).await;
    let surveyed = check_certificates(surveyed, hosts)
        .await
        .map_err(ApplyError::Invalid)?;
    let specs: Vec<HostSpec> = hosts.iter().map(|(spec, _)| spec.clone()).collect();
    let admin = runtime_state::from_survey(&specs, &surveyed);
    let mut sorted = Sorted::default();
    for ((s, (spec, _)), convergence) in surveyed.into_iter().zip(hosts).zip(&admin.convergences) {
        sorted.add(s, spec, &admin.tier, convergence.as_ref());
    }
    if !sorted.unreachable && !outside.is_empty() {
        let left_alone = outside
            .iter()
            .chain(specs.iter().filter(|h| !sorted.targets(&h.name)))
            .map(Standby::of)
            .collect::<Vec<_>>();
        if let Err(e) = keep_a_standby(&sorted.targets, &left_alone, ssh).await {
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

/// Applies a saved plan exactly, without the inventory. The phases: ask every host, in one
/// round trip each, whether its files are still what the plan was made on (any that is not,
/// or cannot be asked, stops everything); for a plan made with `--limit`, make sure a host
/// able to take the VIP is left; roll the changes out, whoever holds the VIP now last; close
/// the sessions.
pub async fn apply_saved<R: Reporter>(
    plan: &SavedPlan,
    file: &Path,
    ssh: &SshOptions,
    serial: usize,
    reporter: &R,
) -> Result<Report, ApplyError> {
    let checked = saved_plan::check(plan, ssh).await;
    let mut sorted = Sorted::default();
    let mut problems = Vec::new();
    for (c, host) in checked.into_iter().zip(&plan.hosts) {
        match (c.result, c.session) {
            (Err(e), session) => {
                problems.push(format!("{}: cannot be checked: {e}", host.host));
                sorted.sessions.extend(session);
            }
            (Ok(moved), session) if !moved.files.is_empty() => {
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
                sorted.sessions.extend(session);
            }
            (Ok(moved), Some(session)) => {
                let host_plan = host.host_plan(moved.holds_vip);
                if host_plan.changed() {
                    sorted.targets.push(Target {
                        deployment: host.deployment(),
                        plan: host_plan,
                        session,
                        timing: c.timing,
                    });
                } else {
                    sorted.leave(host_plan, session, c.timing);
                }
            }
            (Ok(_), None) => problems.push(format!("{}: no session", host.host)),
        }
    }
    if !problems.is_empty() {
        sorted.close().await;
        return Err(ApplyError::StalePlan {
            file: file.to_path_buf(),
            hosts: plan.hosts.len(),
            problems,
        });
    }
    if !plan.standbys.is_empty()
        && let Err(e) = keep_a_standby(&sorted.targets, &plan.standbys, ssh).await
    {
        sorted.close().await;
        return Err(e);
    }
    let targets = std::mem::take(&mut sorted.targets);
    let (applied, used) = rollout(in_rollout_order(targets), serial, reporter).await;
    sorted.reports.splice(0..0, applied);
    sorted.sessions.extend(used);
    let mut report = Report::new("apply", sorted.close().await);
    report.plan_file = Some(file.display().to_string());
    Ok(report)
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
        match (s.result, s.session) {
            (Ok(plan), Some(session)) if plan.changed() => self.targets.push(Target {
                deployment: crate::deploy::deployment::build(
                    spec,
                    &plan,
                    for_apply(spec, tier, convergence).as_ref(),
                ),
                plan,
                session,
                timing,
            }),
            (Ok(plan), Some(session)) if convergence.is_some_and(Convergence::needed) => {
                self.report(HostReport::planned(plan), timing);
                let convergence = convergence.cloned().unwrap_or_default();
                self.converging.push((index, session, convergence));
            }
            (Ok(plan), session) => {
                self.report(HostReport::planned(plan), timing);
                self.sessions.extend(session);
            }
            (Err(e), session) => {
                self.unreachable = true;
                self.report(HostReport::unreachable(e), timing);
                self.sessions.extend(session);
            }
        }
    }

    /// A host the apply leaves as it is.
    fn leave(&mut self, plan: HostPlan, session: Session, timing: Timing) {
        self.report(HostReport::planned(plan), timing);
        self.sessions.push(session);
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
        }
        let converging = self.converging.into_iter().map(|(_, session, _)| session);
        ssh::close_all(self.sessions.into_iter().chain(converging)).await;
        self.reports
    }
}

/// A partial apply that changes a VIP holder needs a host to take the VIP while the holder
/// reloads: one it changes first (which has keepalived, and is verified before the holder
/// goes), or one of `left_alone` that is ready now. Without one, nothing is changed.
async fn keep_a_standby(
    targets: &[Target],
    left_alone: &[Standby],
    ssh: &SshOptions,
) -> Result<(), ApplyError> {
    let holders = holders_needing_a_standby(targets);
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

fn lines(errors: &[HostError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    lines.join("\n")
}
