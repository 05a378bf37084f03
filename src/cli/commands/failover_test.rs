use std::{sync::Arc, time::Duration};

use super::Global;
use crate::cli::progress::Narration;
use crate::{
    cli::Error,
    drill::lb::{self, Break, LbReport, LbTest},
    drill::worker::{self, Method, WorkerReport, WorkerTest},
    drill::{DrillError, Narrator},
    spec::host_connection,
};

/// What to break.
#[derive(Debug, Clone)]
pub enum Victim {
    Worker(String),
    Lb(String),
}

/// `--method`: how to break it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Worker: drop packets to its NodePorts (it looks powered off). The worker default.
    Drop,
    /// Worker: reset connections to its NodePorts (its service looks crashed).
    Reject,
    /// Load balancer: stop keepalived, which gives the VIP away at once. The --lb default.
    StopKeepalived,
    /// Load balancer: stop HAProxy; keepalived's tracked check gives the VIP away.
    StopHaproxy,
    /// Load balancer: SIGKILL every keepalived process (a crash: the others wait 3 adverts).
    KillKeepalived,
    /// Load balancer: SIGKILL HAProxy's master and every worker (a crash).
    KillHaproxy,
    /// Load balancer: cut it off the network with tagged iptables and arptables rules (a
    /// partition, or a power loss as the others see it).
    Isolate,
}

#[derive(Debug, Clone)]
pub struct FailoverOptions {
    pub victim: Victim,
    pub backends: Vec<String>,
    pub method: Option<MethodArg>,
    pub hold: Duration,
    pub probe_from: Option<String>,
    pub probe_rate: u32,
    pub max_failed: u64,
    pub force: bool,
    /// `--report FILE.html`: the drill's timeline, drawn.
    pub report: Option<std::path::PathBuf>,
}

pub enum Report {
    Worker(WorkerReport),
    Lb(LbReport),
}

impl Report {
    pub fn timeline(&self) -> &crate::drill::Timeline {
        match self {
            Report::Worker(r) => &r.timeline,
            Report::Lb(r) => &r.timeline,
        }
    }

    pub fn passed(&self) -> bool {
        match self {
            Report::Worker(r) => r.passed,
            Report::Lb(r) => r.passed,
        }
    }
}

/// Breaks a worker or a load balancer on purpose, measures the tier, and puts it back.
pub fn run(global: &Global, opts: &FailoverOptions) -> Result<Report, Error> {
    let loaded = global.load()?;
    let narrator: Arc<dyn Narrator> = Arc::new(Narration { quiet: global.json });
    // The worker and the probe host are not load balancers: their connections come from
    // their own variables, resolved as for any inventory host.
    let probe_from = match &opts.probe_from {
        Some(name) => Some(host_connection(&loaded.templar, name, "--probe-from host")?),
        None => None,
    };
    let rt = super::runtime()?;
    match &opts.victim {
        Victim::Worker(name) => {
            let method = match opts.method {
                None | Some(MethodArg::Drop) => Method::Drop,
                Some(MethodArg::Reject) => Method::Reject,
                Some(other) => return Err(wrong_method(other, "--worker", "drop or reject")),
            };
            let conn = host_connection(&loaded.templar, name, "worker")?;
            let test = WorkerTest {
                worker: name.clone(),
                backends: opts.backends.clone(),
                method,
                hold: opts.hold,
                force: opts.force,
                probe_rate: opts.probe_rate,
                max_failed: opts.max_failed,
            };
            let plan = worker::plan(&loaded.fleet, &conn, &test)?;
            let setup = worker::Setup {
                lbs: loaded.fleet.hosts.clone(),
                vip_hosts_left_out: loaded.fleet.vip_hosts_left_out.clone(),
                worker: conn,
                probe_from,
                connect_timeout: global.ssh.connect_timeout,
                forks: global.ssh.forks,
                narrator,
            };
            Ok(Report::Worker(
                rt.block_on(worker::run(&plan, &test, &setup))?,
            ))
        }
        Victim::Lb(name) => {
            let method = match opts.method {
                None | Some(MethodArg::StopKeepalived) => Break::StopKeepalived,
                Some(MethodArg::StopHaproxy) => Break::StopHaproxy,
                Some(MethodArg::KillKeepalived) => Break::KillKeepalived,
                Some(MethodArg::KillHaproxy) => Break::KillHaproxy,
                Some(MethodArg::Isolate) => Break::Isolate,
                Some(other) => {
                    return Err(wrong_method(
                        other,
                        "--lb",
                        "stop-keepalived, stop-haproxy, kill-keepalived, kill-haproxy or isolate",
                    ));
                }
            };
            let test = LbTest {
                lb: name.clone(),
                method,
                hold: opts.hold,
                force: opts.force,
                probe_rate: opts.probe_rate,
                backends: opts.backends.clone(),
            };
            if !loaded.fleet.vip_hosts_left_out.is_empty() {
                return Err(DrillError::VipHostsLeftOut {
                    names: loaded.fleet.vip_hosts_left_out.clone(),
                }
                .into());
            }
            let plan = lb::plan(&loaded.fleet, &test)?;
            let setup = lb::Setup {
                lbs: loaded.fleet.hosts.clone(),
                probe_from,
                connect_timeout: global.ssh.connect_timeout,
                forks: global.ssh.forks,
                narrator,
            };
            Ok(Report::Lb(rt.block_on(lb::run(&plan, &test, &setup))?))
        }
    }
}

fn wrong_method(method: MethodArg, victim: &'static str, valid: &'static str) -> Error {
    use clap::ValueEnum;
    let method = method
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string());
    Error::WrongMethod {
        method,
        victim,
        valid,
    }
}
