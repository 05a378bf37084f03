//! The signals that cut a drill short: once the fault is on, every way out restores first.

/// Resolves when the user interrupts lbctl (Ctrl-C) or something asks it to stop (SIGTERM).
pub async fn interrupted() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "interrupted (Ctrl-C)";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C)",
        _ = term.recv() => "terminated (SIGTERM)",
    }
}
