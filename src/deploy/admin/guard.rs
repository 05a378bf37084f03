//! `drain`, `maint` and `weight 0` refuse to take out the last server of a backend that takes
//! traffic, on any load balancer, unless `--force` (as `failover-test` does).

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    remote::{AdminState, ServerState, Setting},
    spec::{HostSpec, Kind, Placement},
};

/// Whether `setting` takes traffic away from a server.
pub(super) fn takes_away(setting: Setting) -> bool {
    matches!(
        setting,
        Setting::State(AdminState::Drain | AdminState::Maint) | Setting::Weight(Some(0))
    )
}

/// The backends on this load balancer (`BACKEND on LB`) that would be left with no server
/// taking new traffic once `placements` are taken out: HAProxy's servers as `runtime` shows
/// them, nginx's as `marks_after` (the marks after the change) leaves them.
pub(super) fn last_servers(
    spec: &HostSpec,
    placements: &[&Placement],
    runtime: &[ServerState],
    marks_after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let backends: BTreeSet<(Kind, &str)> = placements
        .iter()
        .map(|p| (p.kind, p.backend.as_str()))
        .collect();
    for (kind, backend) in backends {
        let ours: BTreeSet<&str> = placements
            .iter()
            .filter(|p| p.backend == backend)
            .map(|p| p.server.as_str())
            .collect();
        let (others, ours_taking) = if kind == Kind::Udp {
            let servers: Vec<&str> = spec
                .udp_backends
                .iter()
                .filter(|b| b.name == backend)
                .flat_map(|b| b.servers.iter().map(|s| s.name.as_str()))
                .collect();
            let up = |s: &str| {
                marks_after
                    .get(&format!("{backend}/{s}"))
                    .is_none_or(|m| m != "down")
            };
            (
                servers
                    .iter()
                    .copied()
                    .filter(|s| !ours.contains(s) && up(s))
                    .count(),
                true,
            )
        } else {
            let in_backend = runtime.iter().filter(|s| s.backend == backend);
            (
                in_backend
                    .clone()
                    .filter(|s| !ours.contains(s.server.as_str()) && s.takes_traffic())
                    .count(),
                in_backend
                    .filter(|s| ours.contains(s.server.as_str()))
                    .any(ServerState::takes_traffic),
            )
        };
        if others == 0 && ours_taking {
            out.push(format!("{backend} on {}", spec.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::admin::tests::{lab, server};
    use crate::spec::Worker;

    #[test]
    fn the_last_server_taking_traffic_is_not_taken_out() {
        let fleet = lab();
        let spec = &fleet.hosts[0];
        let worker = Worker {
            name: "k8s-worker-2",
            address: "10.77.77.22",
        };
        let all = worker.placements(&fleet, &["mysql".to_string()]).unwrap();
        let ours: Vec<&Placement> = all.iter().filter(|p| p.lb == spec.name).collect();
        let runtime = [
            server("mysql", "k8s-worker-1", 0x08, 1), // drained
            server("mysql", "k8s-worker-2", 0, 1),
            server("mysql", "k8s-worker-3", 0, 0), // weight 0
        ];
        assert_eq!(
            last_servers(spec, &ours, &runtime, &BTreeMap::new()),
            ["mysql on lb1"]
        );
        let runtime = [
            server("mysql", "k8s-worker-1", 0, 1),
            server("mysql", "k8s-worker-2", 0, 1),
        ];
        assert!(last_servers(spec, &ours, &runtime, &BTreeMap::new()).is_empty());
        assert!(takes_away(Setting::Weight(Some(0))));
        assert!(!takes_away(Setting::Weight(Some(1))));
    }

    #[test]
    fn the_last_udp_server_left_unmarked_is_not_taken_out() {
        let fleet = lab();
        let spec = &fleet.hosts[0];
        let worker = Worker {
            name: "k8s-worker-2",
            address: "10.77.77.22",
        };
        let all = worker
            .placements(&fleet, &["wireguard".to_string()])
            .unwrap();
        let ours: Vec<&Placement> = all.iter().filter(|p| p.lb == spec.name).collect();
        let others_down: BTreeMap<String, String> = ["k8s-worker-1", "k8s-worker-3"]
            .iter()
            .map(|w| (format!("wireguard/{w}"), "down".to_string()))
            .collect();
        assert_eq!(
            last_servers(spec, &ours, &[], &others_down),
            ["wireguard on lb1"]
        );
        assert!(last_servers(spec, &ours, &[], &BTreeMap::new()).is_empty());
    }
}
