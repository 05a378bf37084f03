//! How a service is reloaded on a host: real sites use systemd, HAProxy's master CLI, or their
//! own command, so the method is a variable rather than an assumption.

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    sync::{Mutex, PoisonError},
};

use serde::Serialize;

use crate::{
    source::Node,
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Reload {
    /// `systemctl reload <unit>`.
    Systemd { unit: String },
    /// `reload` on HAProxy's master CLI socket (master-worker mode without systemd).
    MasterCli { socket: String },
    /// The user's own shell command.
    Command { command: String },
}

impl Reload {
    /// The shell command that performs the reload on the host.
    pub fn shell(&self) -> String {
        match self {
            Reload::Systemd { unit } => format!("systemctl reload {unit}"),
            Reload::MasterCli { socket } => {
                format!("echo reload | socat -t 5 STDIO UNIX-CONNECT:{socket}")
            }
            Reload::Command { command } => command.clone(),
        }
    }

    /// Whether the reload acts on the daemon's running process, and so fails when it does not
    /// run: `systemctl reload` of an inactive unit fails, and HAProxy's master CLI socket
    /// answers only while its master runs. The user's own command may well start it.
    pub fn needs_running(&self) -> bool {
        match self {
            Reload::Systemd { .. } | Reload::MasterCli { .. } => true,
            Reload::Command { .. } => false,
        }
    }
}

/// Reads `<service>_reload_method` and `<service>_reload_command`.
pub fn parse(
    vars: &VarMap,
    service: &str,
    master_socket: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<Reload> {
    let method_key = format!("{service}_reload_method");
    let command_key = format!("{service}_reload_command");
    let allowed: &[&str] = if master_socket.is_some() {
        &["systemd", "master-cli", "command"]
    } else {
        &["systemd", "command"]
    };
    let method = match vars.get(&method_key) {
        Some(n) => field::one_of(n, &method_key, allowed, "reload method", diags)?,
        None => "systemd".to_string(),
    };
    match method.as_str() {
        "master-cli" => Some(Reload::MasterCli {
            socket: master_socket.unwrap_or_default().to_string(),
        }),
        "command" => match vars.get(&command_key) {
            Some(n) => command(n, &command_key, diags).map(|command| Reload::Command { command }),
            None => {
                let loc = &vars[&method_key].loc;
                diags.push(
                    Diagnostic::new(
                        loc,
                        &command_key,
                        format!("`{method_key}: command` needs `{command_key}`"),
                    )
                    .hint(format!(
                        "add e.g. `{command_key}: systemctl reload {service}`"
                    )),
                );
                None
            }
        },
        _ => Some(Reload::Systemd {
            unit: service.to_string(),
        }),
    }
}

/// A one-line shell command, complete: the scripts that run it on the host write it as a line
/// of their own (the UDP health watcher, as the body of a function), so a command the shell
/// would read on past its end (`nginx -s reload &&`, an open quote) breaks the whole script.
pub fn command(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = field::string(node, key, diags)?;
    if text.trim().is_empty() || text.contains(['\n', '\r', '\0']) {
        diags.push(
            Diagnostic::new(
                &node.loc,
                key,
                "expected a non-empty command on a single line",
            )
            .hint("join several commands with `&&`"),
        );
        return None;
    }
    if let Some(why) = incomplete(&text) {
        diags.push(
            Diagnostic::new(
                &node.loc,
                key,
                format!(
                    "{} is not a complete shell command: as a line of a script, sh reads {why}",
                    field::quote(&text)
                ),
            )
            .hint("end it with a command, not `&&`, `||` or `|`, and close every quote, bracket and `if`"),
        );
        return None;
    }
    Some(text)
}

/// What the local `sh -n` (which reads without running anything) says of `command` as a
/// function's body, the way the watcher writes it; `None` when it reads cleanly, or when there
/// is no `sh` to ask (the check on the host still refuses the script then). Each command is
/// asked about once per run: the hosts of a group share theirs.
fn incomplete(command: &str) -> Option<String> {
    static ASKED: Mutex<BTreeMap<String, Option<String>>> = Mutex::new(BTreeMap::new());
    let mut asked = ASKED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(answer) = asked.get(command) {
        return answer.clone();
    }
    let answer = Command::new("sh")
        .args(["-n", "-c", &format!("f() {{\n\t{command}\n}}\n")])
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|out| !out.status.success())
        .map(|out| {
            // dash: `sh: 3: Syntax error: "}" unexpected`; bash: `sh: -c: line 3: syntax error
            // near unexpected token...`: what follows the program and the line
            let said = String::from_utf8_lossy(&out.stderr);
            let first = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let mut why = first;
            while let Some((head, rest)) = why.split_once(": ")
                && (head == "sh"
                    || head == "-c"
                    || head.trim_start_matches("line ").parse::<u32>().is_ok())
            {
                why = rest;
            }
            let why = why.trim();
            if why.is_empty() {
                "a syntax error".to_string()
            } else {
                format!("`{why}`")
            }
        });
    asked.insert(command.to_string(), answer.clone());
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_the_shell_would_read_past_is_incomplete() {
        for ok in [
            "systemctl reload nginx",
            "nginx -s reload && logger reloaded",
            "nginx -s reload; true",
            "sh -c 'kill -HUP $(cat /run/nginx.pid)'",
            "nginx -s reload # the site's way",
        ] {
            assert_eq!(incomplete(ok), None, "{ok}");
        }
        for bad in [
            "nginx -s reload &&",
            "nginx -s reload ||",
            "nginx -s reload |",
            "echo 'open",
            "if true; then nginx -s reload",
            "cat <<EOF",
            "}",
        ] {
            assert!(incomplete(bad).is_some(), "{bad}");
        }
        let why = incomplete("nginx -s reload &&").unwrap();
        assert!(!why.contains("sh:"), "{why}");
    }
}
