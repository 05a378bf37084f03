//! How a service is reloaded on a host: real sites use systemd, HAProxy's master CLI, or their
//! own command, so the method is a variable rather than an assumption.

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

/// A one-line shell command.
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
    Some(text)
}
