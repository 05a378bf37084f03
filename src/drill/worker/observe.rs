//! What a worker drill watches on every load balancer (the state of each server it breaks),
//! and how the samples are read back.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{POLL_EVERY, Plan, Setup};
use crate::{
    drill::watch::{Sample, Watch},
    remote::Query,
    remote::RowState,
    ssh::Session,
};

/// Per load balancer, per target: the server's state in each poll.
pub(super) type Observed = Vec<(RowState, bool)>;

/// Starts polling every load balancer for the state of its targets, for at most `limit`.
pub(super) fn watch_targets(
    plan: &Plan,
    setup: &Setup,
    lbs: &[Arc<Session>],
    limit: Duration,
) -> Watch<Observed> {
    let per_lb: Vec<Vec<(String, String)>> = setup
        .lbs
        .iter()
        .map(|h| {
            plan.targets
                .iter()
                .filter(|t| t.lb == h.name)
                .map(|t| (t.backend.clone(), t.server.clone()))
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
            .map(|(backend, server)| match state.server(backend, server) {
                Some(row) => (row.status.state, row.status.steadily_up()),
                None => (RowState::Other, false),
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
    test: impl Fn((RowState, bool)) -> bool,
) -> Option<Instant> {
    samples
        .iter()
        .find(|s| s.at >= from && s.value.get(nth).is_some_and(|&v| test(v)))
        .map(|s| s.at)
}

pub(super) fn is_down((state, _): (RowState, bool)) -> bool {
    state == RowState::Down
}

pub(super) fn is_up((_, steadily_up): (RowState, bool)) -> bool {
    steadily_up
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_the_first_poll_showing_down_after_the_fault() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let at = |n, state, up| Sample {
            at: ms(n),
            value: vec![(state, up)],
        };
        let samples = vec![
            at(0, RowState::Up, true),
            at(200, RowState::Up, false), // UP 1/2: failing, not DOWN yet
            at(3400, RowState::Down, false),
            at(6000, RowState::Down, false), // DOWN 1/2
            at(7000, RowState::Up, true),
        ];
        assert_eq!(first_at(&samples, 0, ms(100), is_down), Some(ms(3400)));
        assert_eq!(first_at(&samples, 0, ms(5000), is_up), Some(ms(7000)));
        assert_eq!(first_at(&samples, 1, t0, is_down), None);
    }
}
