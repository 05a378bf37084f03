//! SSH sessions to many hosts at once, and one script run on each of them in parallel.
//!
//! A host that cannot be reached is an error for that host only, after the connect timeout;
//! the others go on. Sessions are shared (`Arc`) so that several tasks (a poller, a restore
//! path) can run scripts over the same multiplexed connection.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;

use crate::{
    spec::Connection,
    ssh::{ConnectOptions, RemoteOutput, Session, TransportError},
};

/// One host's connection attempt: its inventory name and the session, or why there is none.
pub struct Connected {
    pub host: String,
    pub session: Result<Arc<Session>, TransportError>,
}

/// A fresh session to every host (drills do not reuse masters), in the order given, or the pre-flight error naming every host that
/// could not be reached.
pub async fn connect_every(
    connections: &[Connection],
    connect_timeout: Duration,
    forks: usize,
) -> Result<Vec<Arc<Session>>, TransportError> {
    let mut all = Vec::new();
    let mut unreachable = Vec::new();
    let options = ConnectOptions {
        connect_timeout,
        persist: None,
    };
    for c in connect_all(connections, options, forks).await {
        match c.session {
            Ok(s) => all.push(s),
            Err(e) => unreachable.push(e),
        }
    }
    if unreachable.is_empty() {
        Ok(all)
    } else {
        Err(TransportError::Unreachable { hosts: unreachable })
    }
}

/// Connects to every host, at most `forks` at a time, each within the connect timeout.
pub async fn connect_all(
    connections: &[Connection],
    options: ConnectOptions,
    forks: usize,
) -> Vec<Connected> {
    let limit = Arc::new(Semaphore::new(forks.max(1)));
    let options = Arc::new(options);
    let tasks: Vec<_> = connections
        .iter()
        .map(|conn| {
            let (conn, limit, options) = (conn.clone(), Arc::clone(&limit), Arc::clone(&options));
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await;
                Session::connect(&conn, &options).await.map(Arc::new)
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (task, conn) in tasks.into_iter().zip(connections) {
        let session = task
            .await
            .unwrap_or_else(|e| Err(task_failed("connect", &e)));
        out.push(Connected {
            host: conn.name.clone(),
            session,
        });
    }
    out
}

/// Runs `scripts[i]` on `sessions[i]`, all at once, and returns each output in order.
pub async fn run_all(
    sessions: &[Arc<Session>],
    scripts: Vec<String>,
) -> Vec<Result<RemoteOutput, TransportError>> {
    let tasks: Vec<_> = sessions
        .iter()
        .zip(scripts)
        .map(|(session, script)| {
            let session = Arc::clone(session);
            tokio::spawn(async move { session.run(&script).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(
            task.await
                .unwrap_or_else(|e| Err(task_failed("remote", &e))),
        );
    }
    out
}

fn task_failed(what: &'static str, error: &tokio::task::JoinError) -> TransportError {
    TransportError::Task {
        what,
        message: error.to_string(),
    }
}
