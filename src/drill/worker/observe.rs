//! What a worker drill watches on every load balancer (the state of each server it breaks:
//! HAProxy's, and for a UDP server whether nginx has it marked down), and how the samples are
//! read back.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{POLL_EVERY, Plan, Setup};
use crate::{
    drill::watch::{Sample, Watch},
    remote::Query,
    remote::RowState,
    spec::Protocol,
    ssh::Session,
};

/// Per load balancer, per target: the server's state in each poll.
pub(super) type Observed = Vec<Seen>;

/// One server in one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    /// As HAProxy's checks have it.
    pub state: RowState,
    /// UP, with no failed check pending.
    pub steadily_up: bool,
    /// A UDP server: whether nginx has it marked down (an unreadable stream file counts as
    /// not marked); `None` for TCP.
    pub nginx_down: Option<bool>,
}

/// Starts polling every load balancer for the state of its targets, for at most `limit`.
pub(super) fn watch_targets(
    plan: &Plan,
    setup: &Setup,
    lbs: &[Arc<Session>],
    limit: Duration,
) -> Watch<Observed> {
    let per_lb: Vec<Vec<(String, String, Protocol)>> = setup
        .lbs
        .iter()
        .map(|h| {
            plan.targets
                .iter()
                .filter(|t| t.lb == h.name)
                .map(|t| (t.backend.clone(), t.server.clone(), t.protocol))
                .collect()
        })
        .collect();
    let hosts = setup
        .lbs
        .iter()
        .zip(lbs)
        .map(|(h, s)| (h.name.clone(), Arc::clone(s), Query::servers_only(h)))
        .collect();
    Watch::start(hosts, POLL_EVERY, limit, move |index, state| {
        per_lb[index]
            .iter()
            .map(|(backend, server, protocol)| {
                let nginx_down = (*protocol == Protocol::Udp)
                    .then(|| state.udp_marked_down(backend, server).unwrap_or(false));
                match state.server(backend, server) {
                    Some(row) => Seen {
                        state: row.status.state,
                        steadily_up: row.status.steadily_up(),
                        nginx_down,
                    },
                    None => Seen {
                        state: RowState::Other,
                        steadily_up: false,
                        nginx_down,
                    },
                }
            })
            .collect()
    })
}

/// Where each target sits in the watch's samples: its load balancer's index, and its place
/// among that load balancer's targets.
pub(super) fn positions(plan: &Plan) -> Vec<(usize, usize)> {
    plan.targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let lb = plan
                .lbs
                .iter()
                .position(|n| *n == t.lb)
                .expect("target's lb");
            let nth = plan.targets[..i].iter().filter(|o| o.lb == t.lb).count();
            (lb, nth)
        })
        .collect()
}

/// The first sample at or after `from` where `test` holds for the target.
pub(super) fn first_at(
    samples: &[Sample<Observed>],
    nth: usize,
    from: Instant,
    test: impl Fn(Seen) -> bool,
) -> Option<Instant> {
    samples
        .iter()
        .find(|s| s.at >= from && s.value.get(nth).is_some_and(|&v| test(v)))
        .map(|s| s.at)
}

/// HAProxy marked it DOWN, and for a UDP server nginx has it marked down too: it gets no new
/// flow.
pub(super) fn is_down(seen: Seen) -> bool {
    seen.state == RowState::Down && seen.nginx_down != Some(false)
}

/// Steadily UP, and for a UDP server back in nginx's hands.
pub(super) fn is_up(seen: Seen) -> bool {
    seen.steadily_up && seen.nginx_down != Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_the_first_poll_showing_down_after_the_fault() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let at = |n, state, steadily_up, nginx_down| Sample {
            at: ms(n),
            value: vec![Seen {
                state,
                steadily_up,
                nginx_down,
            }],
        };
        let samples = vec![
            at(0, RowState::Up, true, None),
            at(200, RowState::Up, false, None), // UP 1/2: failing, not DOWN yet
            at(3400, RowState::Down, false, None),
            at(6000, RowState::Down, false, None), // DOWN 1/2
            at(7000, RowState::Up, true, None),
        ];
        assert_eq!(first_at(&samples, 0, ms(100), is_down), Some(ms(3400)));
        assert_eq!(first_at(&samples, 0, ms(5000), is_up), Some(ms(7000)));
        assert_eq!(first_at(&samples, 1, t0, is_down), None);
        // A UDP server: detected once nginx has it marked down, recovered once it no longer has.
        let udp = vec![
            at(0, RowState::Up, true, Some(false)),
            at(2000, RowState::Down, false, Some(false)),
            at(2200, RowState::Down, false, Some(true)),
            at(6000, RowState::Up, true, Some(true)),
            at(6200, RowState::Up, true, Some(false)),
        ];
        assert_eq!(first_at(&udp, 0, ms(100), is_down), Some(ms(2200)));
        assert_eq!(first_at(&udp, 0, ms(5000), is_up), Some(ms(6200)));
    }
}
