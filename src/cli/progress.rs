//! Per-host progress: live spinners on a terminal, plain lines otherwise (CI logs), nothing
//! with `--json` (stdout then holds only the report).

use std::{io::IsTerminal, time::Duration};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

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

    pub fn start(&self, host: &str, message: &str) -> Task {
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
                eprintln!("{host}: {message}");
                Task::Line(host.to_string())
            }
            Progress::Quiet => Task::Quiet,
        }
    }
}

impl Task {
    /// Says what the host is doing now (live display only).
    pub fn update(&self, message: &str) {
        if let Task::Live(bar) = self {
            bar.set_message(message.to_string());
        }
    }

    pub fn finish(self, message: &str) {
        match self {
            // The live line vanishes; the final report says what happened.
            Task::Live(bar) => bar.finish_and_clear(),
            Task::Line(host) => eprintln!("{host}: {message}"),
            Task::Quiet => {}
        }
    }
}
