//! What a drill tells the user while it runs: one line per step (pre-flight ok, fault on,
//! each detection, ...). The drill only says what happens; the CLI decides where it goes.

/// Receives a drill's progress lines as they happen.
pub trait Narrator: Send + Sync {
    fn say(&self, line: &str);
}
