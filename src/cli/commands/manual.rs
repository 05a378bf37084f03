//! `lbctl man` and `lbctl completions`: the manual page and shell completions, generated from
//! the same clap definition that parses the command line, so they never drift from it.

use std::io::Write;

use clap_mangen::{
    Man,
    roff::{Roff, bold, roman},
};

use crate::cli::{Error, ExitStatus};

/// One roff page for the whole tool: lbctl's name, synopsis, description and global options,
/// the list of subcommands, then a section per subcommand with its synopsis and its own
/// options, and the exit statuses.
pub fn man_page(lbctl: &clap::Command, out: &mut dyn Write) -> Result<(), Error> {
    let failed = |source| Error::Print {
        what: "manual page",
        source,
    };
    let page = Man::new(lbctl.clone());
    let subcommands: Vec<&clap::Command> = lbctl
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    let mut buf = Vec::new();
    page.render_title(&mut buf)
        .and_then(|()| page.render_name_section(&mut buf))
        .and_then(|()| page.render_synopsis_section(&mut buf))
        .and_then(|()| page.render_description_section(&mut buf))
        .and_then(|()| page.render_options_section(&mut buf))
        .map_err(failed)?;

    let mut list = Roff::default();
    list.control("SH", ["SUBCOMMANDS"]);
    for sub in &subcommands {
        list.control("TP", []);
        list.text([bold(format!("{} {}", lbctl.get_name(), sub.get_name()))]);
        list.text([roman(
            sub.get_about().map(ToString::to_string).unwrap_or_default(),
        )]);
    }
    list.to_writer(&mut buf).map_err(failed)?;

    for sub in subcommands {
        let name = format!("{} {}", lbctl.get_name(), sub.get_name());
        // Built on its own, a subcommand's page holds only its own options: the global ones
        // are in lbctl's OPTIONS above.
        let page = Man::new(sub.clone().bin_name(&name));
        let mut section = Vec::new();
        page.render_description_section(&mut section)
            .and_then(|()| page.render_synopsis_section(&mut section))
            .and_then(|()| {
                if sub.get_arguments().any(|a| !a.is_hide_set()) {
                    page.render_options_section(&mut section)
                } else {
                    Ok(())
                }
            })
            .map_err(failed)?;
        let mut heading = Roff::default();
        heading.control("SH", [name.to_uppercase().as_str()]);
        heading.to_writer(&mut buf).map_err(failed)?;
        // The subcommand's sections become subsections of its own.
        for line in String::from_utf8_lossy(&section).lines() {
            let line = match line.strip_prefix(".SH ") {
                Some(title) => format!(".SS {title}"),
                None => line.to_string(),
            };
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
        }
    }

    let mut exit = Roff::default();
    exit.control("SH", ["EXIT STATUS"]);
    for status in ExitStatus::ALL {
        exit.control("TP", []);
        exit.text([bold(status.code().to_string())]);
        exit.text([roman(status.meaning())]);
    }
    exit.to_writer(&mut buf).map_err(failed)?;
    page.render_version_section(&mut buf).map_err(failed)?;
    write_out(out, &buf).map_err(failed)
}

/// Writes `text` to `out`. A reader that stopped reading (`lbctl man | head`) is not an
/// error: it had what it wanted.
fn write_out(out: &mut dyn Write, text: &[u8]) -> std::io::Result<()> {
    match out.write_all(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The completion script for `shell`, for the command line `lbctl`.
pub fn completions(
    lbctl: &mut clap::Command,
    shell: clap_complete::Shell,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let name = lbctl.get_name().to_string();
    // Generated in memory: clap_complete panics when it cannot write.
    let mut script = Vec::new();
    clap_complete::generate(shell, lbctl, name, &mut script);
    write_out(out, &script).map_err(|source| Error::Print {
        what: "completions",
        source,
    })
}
