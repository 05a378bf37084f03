//! What lbctl shows while it works, on stderr: warnings about the input, per-host progress
//! during an apply (live spinners on a terminal, plain lines otherwise, as in CI logs) and a
//! drill's narration (neither with `--json`: stdout then holds only the report).

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::{deploy::Reporter, drill::Narrator, source::Diagnostic};

pub enum Progress {
    Live(MultiProgress),
    Lines,
    Quiet,
}

pub enum Task {
    Live(ProgressBar),
    Line(String),
    Quiet,
}

impl Progress {
    pub fn new(json: bool) -> Progress {
        if json {
            Progress::Quiet
        } else if std::io::stderr().is_terminal() {
            Progress::Live(MultiProgress::new())
        } else {
            Progress::Lines
        }
    }
}

impl Reporter for Progress {
    type Task = Task;

    fn start(&self, host: &str, message: &str) -> Task {
        match self {
            Progress::Live(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} {elapsed}")
                        .expect("static template"),
                );
                bar.set_prefix(host.to_string());
                bar.set_message(message.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                Task::Live(bar)
            }
            Progress::Lines => {
                errln!("{host}: {message}");
                Task::Line(host.to_string())
            }
            Progress::Quiet => Task::Quiet,
        }
    }

    /// Says what the host is doing now (live display only).
    fn update(&self, task: &Task, message: &str) {
        if let Task::Live(bar) = task {
            bar.set_message(message.to_string());
        }
    }

    fn finish(&self, task: Task, message: &str) {
        match task {
            // The live line vanishes; the final report says what happened.
            Task::Live(bar) => bar.finish_and_clear(),
            Task::Line(host) => errln!("{host}: {message}"),
            Task::Quiet => {}
        }
    }
}

/// A drill's narration: `lbctl: ...` lines on stderr, none with `--json`.
pub struct Narration {
    pub quiet: bool,
}

impl Narrator for Narration {
    fn say(&self, line: &str) {
        if !self.quiet {
            errln!("lbctl: {line}");
        }
    }
}

/// Problems that do not stop the run (inventory files Ansible would skip too), on stderr.
pub fn warnings(diags: &[Diagnostic]) {
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = writeln!(err, "warning: {d}");
    }
}
