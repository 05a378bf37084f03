//! What an apply tells the user while it runs: each host's progress. The deploy layer only
//! says what happens; the CLI decides how it looks (a live spinner, a log line, nothing).

/// Receives each host's progress during a rollout (as uv's `Reporter` does for downloads).
pub trait Reporter: Sync {
    /// One host's line of progress, from `start` to `finish`.
    type Task: Send;

    /// `host` begins: `message` says with what.
    fn start(&self, host: &str, message: &str) -> Self::Task;

    /// What the host does now.
    fn update(&self, task: &Self::Task, message: &str);

    /// The host is done: `message` says how it ended.
    fn finish(&self, task: Self::Task, message: &str);
}
