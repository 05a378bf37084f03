//! What `drain --wait` waits for: the sessions still open to the worker's servers on every
//! load balancer, counted in one round trip each over the sessions the change opened.

use std::sync::Arc;

use futures_util::future::join_all;
use serde::{Serialize, Serializer};

use crate::{
    deploy::DeployError,
    remote::{Query, ReportError, RowKind, parse_lb_state},
    spec::{Fleet, Kind, Placement},
    ssh::{self, Session},
};

/// Sessions still open to the worker's servers on one load balancer.
#[derive(Debug, Clone, Serialize)]
pub struct Left {
    pub host: String,
    /// HAProxy's current sessions to the worker's servers, plus nginx's UDP sessions to them;
    /// or why they could not be counted (`{"Ok": N}` or `{"Err": "why"}` in JSON).
    #[serde(serialize_with = "count_or_why")]
    pub sessions: Result<u64, DeployError>,
}

fn count_or_why<S: Serializer>(
    sessions: &Result<u64, DeployError>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match sessions {
        Ok(n) => Ok::<_, String>(*n).serialize(serializer),
        Err(e) => Err::<u64, _>(e.to_string()).serialize(serializer),
    }
}

/// Counts, on every load balancer with a session, the sessions still open to the worker's
/// servers (`scur` for HAProxy, connected UDP sockets of nginx to the server's address for
/// UDP), in one round trip each.
pub async fn count_sessions(
    fleet: &Fleet,
    sessions: &[Option<Arc<Session>>],
    placements: &[Placement],
) -> Vec<Left> {
    let counts = fleet
        .hosts
        .iter()
        .zip(sessions)
        .filter_map(|(spec, session)| Some((spec, session.as_ref()?)))
        .map(|(spec, session)| async move {
            let ours: Vec<&Placement> = placements.iter().filter(|p| p.lb == spec.name).collect();
            let mut query = Query::servers_only(spec);
            query.udp_peers = ours
                .iter()
                .filter(|p| p.kind == Kind::Udp)
                .map(|p| format!("{}:{}", p.address, p.port))
                .collect();
            Left {
                host: spec.name.clone(),
                sessions: count(session, &query, &ours).await,
            }
        });
    join_all(counts).await
}

async fn count(session: &Session, query: &Query, ours: &[&Placement]) -> Result<u64, DeployError> {
    let out = session.run(&query.script()).await?;
    let state = parse_lb_state(&out.stdout).map_err(|error| DeployError::Unreadable {
        error,
        output: out.clone(),
    })?;
    let rows = match state.stat {
        Some(Ok(rows)) => rows,
        Some(Err(e)) => return Err(e.into()),
        None => {
            return Err(ReportError::Host("HAProxy's runtime API was not asked".into()).into());
        }
    };
    let tcp: u64 = rows
        .iter()
        .filter(|r| {
            r.kind == RowKind::Server
                && ours
                    .iter()
                    .any(|p| p.kind != Kind::Udp && p.backend == r.proxy && p.server == r.name)
        })
        .map(|r| r.sessions)
        .sum();
    let udp: u64 = state.udp_sessions.values().sum();
    Ok(tcp + udp)
}

/// Closes the sessions a change opened.
pub async fn close(sessions: Vec<Option<Arc<Session>>>) {
    ssh::close_all(
        sessions
            .into_iter()
            .flatten()
            .filter_map(|s| Arc::try_unwrap(s).ok()),
    )
    .await;
}
