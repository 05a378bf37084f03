//! What a load-balancer drill watches on every load balancer (does it hold the VIP, do its
//! daemons run), and when the samples say the VIP moved.

use std::time::Instant;

use super::Plan;
use crate::{
    drill::watch::Sample,
    remote::{LbState, Query},
    spec::HostSpec,
};

/// Per load balancer: does it hold the VIP, and does each of its daemons run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    pub holds_vip: bool,
    pub daemons_running: bool,
}

pub(super) fn seen(state: &LbState) -> Seen {
    Seen {
        holds_vip: state.holds_vip(),
        daemons_running: !state.daemons.is_empty() && state.daemons.values().all(|d| d.running),
    }
}

/// The `daemons` query, plus the VIPs.
pub(super) fn query(spec: &HostSpec) -> Query {
    Query {
        runtime_socket: None,
        admin_record: None,
        udp_live: None,
        ..Query::full(spec)
    }
}

/// The first moment at or after `t0` when, in the latest poll of every host, another host
/// held the VIP and the broken one no longer did (or, when it may keep it, whatever it said:
/// a killed keepalived leaves the address behind, a cut-off host does not know).
pub(super) fn moved_at(
    plan: &Plan,
    samples: &[Vec<Sample<Seen>>],
    t0: Instant,
) -> Option<(Instant, String)> {
    let broken = plan.lbs.iter().position(|n| *n == plan.lb)?;
    let latest = |i: usize, at: Instant| {
        samples[i]
            .iter()
            .rev()
            .find(|s| s.at >= t0 && s.at <= at)
            .map(|s| s.value)
    };
    let mut times: Vec<Instant> = samples
        .iter()
        .flatten()
        .map(|s| s.at)
        .filter(|&at| at >= t0)
        .collect();
    times.sort();
    times.into_iter().find_map(|at| {
        let broken_free =
            plan.holder_may_keep_vip || latest(broken, at).is_some_and(|s| !s.holds_vip);
        let holder = (0..samples.len())
            .find(|&i| i != broken && latest(i, at).is_some_and(|s| s.holds_vip))?;
        broken_free.then(|| (at, plan.lbs[holder].clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sample(at: Instant, holds_vip: bool) -> Sample<Seen> {
        Sample {
            at,
            value: Seen {
                holds_vip,
                daemons_running: true,
            },
        }
    }

    #[test]
    fn the_vip_has_moved_once_the_old_holder_let_go_and_another_took_it() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut plan = Plan {
            lb: "lb1".into(),
            lbs: vec!["lb1".into(), "lb2".into(), "lb3".into()],
            what: "keepalived",
            action: super::super::Action::Isolate,
            move_budget: Duration::from_secs(3),
            holder_may_keep_vip: false,
            probe_targets: Vec::new(),
            probe_timeout: Duration::from_secs(9),
            takeback: Duration::from_secs(8),
        };
        let samples = vec![
            vec![
                sample(ms(100), true),
                sample(ms(200), false),
                sample(ms(300), false),
            ],
            vec![
                sample(ms(110), false),
                sample(ms(210), false),
                sample(ms(310), true),
            ],
            vec![
                sample(ms(120), false),
                sample(ms(220), false),
                sample(ms(320), false),
            ],
        ];
        assert_eq!(moved_at(&plan, &samples, t0), Some((ms(310), "lb2".into())));
        // an answer from before the stop does not count
        assert_eq!(moved_at(&plan, &samples, ms(400)), None);
        // the old holder still holding it: not moved, whoever else claims it
        let split = vec![
            vec![sample(ms(100), true)],
            vec![sample(ms(110), true)],
            vec![sample(ms(120), false)],
        ];
        assert_eq!(moved_at(&plan, &split, t0), None);
        // ...unless it may keep it (cut off, or its keepalived killed): another holds it
        plan.holder_may_keep_vip = true;
        assert_eq!(moved_at(&plan, &split, t0), Some((ms(110), "lb2".into())));
    }
}
