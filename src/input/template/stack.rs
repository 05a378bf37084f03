//! The stack of the threads that evaluate templates.
//!
//! minijinja frees a value by recursion, a level of nesting at a time, and a template can build
//! a value as deep as its fuel allows: `{% set ns.x = [ns.x] %}` in a loop nests about two
//! million levels, which take about 60 bytes of stack each to free in a release build (several
//! times that unoptimised). The default stacks (8 MiB for the main thread, 2 MiB for the
//! others) end at about a hundred thousand levels, and the process aborts. Every thread that evaluates templates (lbctl's main work and its render
//! threads) therefore has [`STACK_BYTES`]: address space, of which a thread uses what it
//! touches. Under an address-space limit (`ulimit -v`) each takes a sixteenth of the limit at
//! most, so that the stacks leave the heap most of it; where even that cannot be had, a render
//! thread takes what it can, and lbctl's main work runs on the main thread.

use std::thread::{Builder, Scope, ScopedJoinHandle};

/// The stack of a thread that evaluates templates: twice what the deepest value the fuel
/// allows needs to be freed.
pub const STACK_BYTES: usize = 256 << 20;

/// [`STACK_BYTES`], or a sixteenth of the address-space limit where that is less (16 MiB at
/// the least).
fn stack_bytes() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the limit into the struct it is given, which lives here.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    if !known || limit.rlim_cur == libc::RLIM_INFINITY {
        return STACK_BYTES;
    }
    usize::try_from(limit.rlim_cur / 16)
        .unwrap_or(STACK_BYTES)
        .clamp(16 << 20, STACK_BYTES)
}

/// Runs `f` on a thread with a deep stack (`stack_bytes`), or on this one where no such thread
/// can be started. A panic in `f` is resumed here.
pub fn with_deep_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut job = Some(f);
    let outcome = std::thread::scope(|scope| {
        let slot = &mut job;
        Builder::new()
            .name("lbctl".into())
            .stack_size(stack_bytes())
            .spawn_scoped(scope, move || slot.take().map(|f| f()))
            .ok()
            .map(ScopedJoinHandle::join)
    });
    match outcome {
        Some(Ok(Some(value))) => value,
        Some(Err(panic)) => std::panic::resume_unwind(panic),
        _ => match job.take() {
            Some(f) => f(),
            None => unreachable!("the thread that took the job returned its value"),
        },
    }
}

/// Spawns `f` in `scope` on a thread with a deep stack (`stack_bytes`); where that cannot be
/// had, with half of it, and so on down to 16 MiB, then the default.
pub fn spawn_scoped<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    f: impl FnOnce() -> T + Send + Clone + 'scope,
) -> ScopedJoinHandle<'scope, T> {
    let mut size = stack_bytes();
    while size >= 16 << 20 {
        if let Ok(handle) = Builder::new()
            .stack_size(size)
            .spawn_scoped(scope, f.clone())
        {
            return handle;
        }
        size /= 2;
    }
    scope.spawn(f)
}
