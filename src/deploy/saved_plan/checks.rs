//! What `apply FILE` holds a saved plan to before it connects anywhere: every field that
//! decides what runs on a host, or which file is written there, passes the rule its
//! inventory's value passed.

use std::{collections::BTreeSet, sync::Arc};

use super::{PlannedHost, SavedPlan};
use crate::{
    deploy::{declared, deployment},
    remote,
    source::{Diagnostics, Loc, Node, Value, field},
    spec::managed_path::{self, Owner},
    spec::{Connection, Service, reload, udp_health},
};

impl SavedPlan {
    /// What in the plan `lbctl plan` would not have written, each `host: field: why`, and
    /// whether some file lies outside its service's usual directories. The SHA-256 beside
    /// each file's content tells damage, not an edit (whoever edits the content can edit its
    /// digest), so every field that decides what runs on a host, or which file is written
    /// there, is held to the rules its inventory's value was: the connection; each path
    /// (`managed_path`, with `confine_paths` from the operator, never from the file); one
    /// file per service, the watcher's unit at its one path; the check commands exactly
    /// lbctl's; the reloads one-line commands (`reload::command`); what is verified what the
    /// plan's own files declare; no admin state (`lbctl plan` saves none); plain absolute
    /// paths for sockets and pid files.
    pub(super) fn problems(&self, confine_paths: bool) -> (Vec<String>, bool) {
        let mut problems = Vec::new();
        let mut outside = false;
        let mut names = BTreeSet::new();
        for (index, host) in self.hosts.iter().enumerate() {
            let name = &host.host;
            if !names.insert(name.as_str()) {
                problems.push(format!("{name}: the host appears twice"));
            }
            let mut at = |field: String, message: String| {
                problems.push(format!("{name}: hosts[{index}].{field}: {message}"));
            };
            connection_problems(name, &host.connection, &mut at);
            for (i, vip) in host.vips.iter().enumerate() {
                if vip.parse::<std::net::IpAddr>().is_err() {
                    at(
                        format!("vips[{i}]"),
                        format!("{} is not an IP address", field::quote(vip)),
                    );
                }
            }
            host.file_problems(confine_paths, &mut outside, &mut at);
            host.command_problems(&mut at);
            host.verify_problems(&mut at);
            host.keep_problems(&mut at);
        }
        for (index, standby) in self.standbys.iter().enumerate() {
            let name = &standby.host;
            let mut at = |field: String, message: String| {
                problems.push(format!("{name}: standbys[{index}].{field}: {message}"));
            };
            connection_problems(name, &standby.connection, &mut at);
            for (i, vip) in standby.vips.iter().enumerate() {
                if let Some(message) = inventory_rule(vip, |n, d| field::cidr(n, "vip", d)) {
                    at(format!("vips[{i}]"), message);
                }
            }
            let pid_files = std::iter::once(("haproxy_pid_file", &standby.haproxy_pid_file)).chain(
                standby
                    .keepalived_pid_file
                    .iter()
                    .map(|p| ("keepalived_pid_file", p)),
            );
            for (key, path) in pid_files {
                if let Some(message) = inventory_rule(path, |n, d| field::abs_path(n, key, d)) {
                    at(key.into(), message);
                }
            }
        }
        (problems, outside)
    }
}

/// The connection of host `name`: its own, and as the inventory's would be.
fn connection_problems(name: &str, connection: &Connection, at: &mut At) {
    if connection.name != name {
        at(
            "connection.name".into(),
            format!("its connection is to another host ({})", connection.name),
        );
    }
    for problem in connection.problems() {
        at("connection".into(), problem);
    }
}

/// Where a plan file's path was refused, and why.
type At<'a> = dyn FnMut(String, String) + 'a;

impl PlannedHost {
    /// The files: each path as the inventory's would be (`managed_path`), one file per service
    /// and the first HAProxy's, the watcher's unit at the one path lbctl gives it, no two files
    /// at one path, every content the one its SHA-256 stands for.
    fn file_problems(&self, confine_paths: bool, outside: &mut bool, at: &mut At) {
        // nginx's stream file may be the UDP health watcher's source, in the watcher's
        // directory (see `spec/udp_health.rs`)
        let owners = |service: Service| -> Vec<Owner> {
            match service {
                Service::Nginx => vec![service.into(), Service::UdpHealth.into()],
                _ => vec![service.into()],
            }
        };
        let mut paths: Vec<(String, &str, Vec<Owner>)> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    format!("files[{i}].path"),
                    f.path.as_str(),
                    owners(f.service),
                )
            })
            .collect();
        // (a plan from before lbctl kept a record has none)
        if !self.keep.record_path.is_empty() {
            paths.push((
                "keep.record_path".into(),
                &self.keep.record_path,
                vec![Owner::Lbctl],
            ));
        }
        if let Some(state) = &self.keep.state_file {
            paths.push((
                "keep.state_file".into(),
                state,
                vec![Service::Haproxy.into()],
            ));
        }
        for (i, (key, path, owners)) in paths.iter().enumerate() {
            // refused only when no owner it may belong to takes it; outside the usual
            // directories only when it would be taken there
            let refusals: Vec<_> = owners
                .iter()
                .filter_map(|owner| managed_path::problem(path, *owner, confine_paths))
                .collect();
            if refusals.len() == owners.len()
                && let Some((message, _)) = refusals.into_iter().next()
            {
                *outside |= owners
                    .iter()
                    .all(|owner| managed_path::problem(path, *owner, false).is_none());
                at(key.clone(), format!("{} {message}", field::quote(path)));
            }
            if let Some((_, other, _)) = paths[..i].iter().find(|(_, p, _)| {
                p == path || managed_path::is_inside(path, p) || managed_path::is_inside(p, path)
            }) {
                at(key.clone(), format!("{path} and {other} overlap"));
            }
        }
        let unit = format!("/etc/systemd/system/{}", udp_health::UNIT);
        let mut services = BTreeSet::new();
        for (i, file) in self.files.iter().enumerate() {
            if !services.insert(file.service) {
                at(
                    format!("files[{i}].service"),
                    format!(
                        "a second {} file: lbctl plans one per service",
                        file.service
                    ),
                );
            }
            if file.service == Service::UdpHealthUnit && file.path != unit {
                at(
                    format!("files[{i}].path"),
                    format!(
                        "{} is not the UDP health watcher's unit, {unit}, the one unit lbctl writes",
                        field::quote(&file.path)
                    ),
                );
            }
            if remote::sha256_hex(file.content.as_bytes()) != file.sha256 {
                at(
                    format!("files[{i}].content"),
                    format!(
                        "what the plan writes to {} is not what it recorded (its SHA-256 differs): the file was edited or damaged after `lbctl plan` wrote it",
                        file.path
                    ),
                );
            }
        }
        match self.files.first() {
            Some(first) if first.service == Service::Haproxy => {}
            _ => at(
                "files[0]".into(),
                "not HAProxy's configuration, which lbctl plans first on every host".into(),
            ),
        }
    }

    /// The commands run on the host: every service with a file has its control, whose check is
    /// exactly the one lbctl runs for that service and whose reload is a command the inventory
    /// would take (`reload::command`: one line, not empty).
    fn command_problems(&self, at: &mut At) {
        for (i, file) in self.files.iter().enumerate() {
            if !self.controls.contains_key(&file.service) {
                at(
                    format!("files[{i}].service"),
                    format!(
                        "`controls` has no {} (how it is checked and reloaded)",
                        file.service
                    ),
                );
            }
        }
        for (service, control) in &self.controls {
            let wanted = deployment::check_command(*service);
            if control.check != wanted {
                at(
                    format!("controls.{service}.check"),
                    format!(
                        "{} is not the check lbctl runs for {service} ({})",
                        field::quote(&control.check),
                        field::quote(wanted)
                    ),
                );
            }
            let key = format!("controls.{service}.reload");
            if let Some(message) =
                inventory_rule(&control.reload, |n, d| reload::command(n, &key, d))
            {
                at(
                    key.clone(),
                    format!("{} is refused: {message}", field::quote(&control.reload)),
                );
            }
            if let Some((_, pid_file)) = &control.running {
                let key = format!("controls.{service}.running");
                if let Some(message) = inventory_rule(pid_file, |n, d| field::abs_path(n, &key, d))
                {
                    at(key, message);
                }
            }
            if let Some(first) = &control.first_start {
                for (name, command) in [("start", &first.start), ("stop", &first.stop)] {
                    let key = format!("controls.{service}.first_start.{name}");
                    if let Some(message) =
                        inventory_rule(command, |n, d| reload::command(n, &key, d))
                    {
                        at(
                            key.clone(),
                            format!("{} is refused: {message}", field::quote(command)),
                        );
                    }
                }
                let key = format!("controls.{service}.first_start.pid_file");
                if let Some(message) =
                    inventory_rule(&first.pid_file, |n, d| field::abs_path(n, &key, d))
                {
                    at(key, message);
                }
            }
        }
    }

    /// What is verified after the reloads: the runtime socket and ports the plan's own files
    /// declare (as `lbctl plan` derived them), and plain absolute paths for the master socket
    /// and the pid files.
    fn verify_problems(&self, at: &mut At) {
        let declared =
            declared::declared_by(self.files.iter().map(|f| (f.service, f.content.as_str())));
        let verify = &self.verify;
        if verify.haproxy_runtime_socket != declared.socket {
            at(
                "verify.haproxy_runtime_socket".into(),
                format!(
                    "{} is not the `stats socket` of the plan's haproxy.cfg ({})",
                    field::quote(verify.haproxy_runtime_socket.as_deref().unwrap_or("")),
                    field::quote(declared.socket.as_deref().unwrap_or(""))
                ),
            );
        }
        for (key, ports, wanted) in [
            ("tcp_ports", &verify.tcp_ports, &declared.tcp),
            ("udp_ports", &verify.udp_ports, &declared.udp),
        ] {
            if ports != wanted {
                at(
                    format!("verify.{key}"),
                    format!("{ports:?} are not the ports the plan's files listen on ({wanted:?})"),
                );
            }
        }
        let paths = verify
            .haproxy_master_socket
            .iter()
            .map(|p| ("verify.haproxy_master_socket".to_string(), p))
            .chain(
                verify
                    .pid_files
                    .iter()
                    .enumerate()
                    .map(|(i, (_, p))| (format!("verify.pid_files[{i}]"), p)),
            );
        for (key, path) in paths {
            if let Some(message) = inventory_rule(path, |n, d| field::abs_path(n, &key, d)) {
                at(key, message);
            }
        }
    }

    /// What carries the servers' state: HAProxy's configuration is the plan's own; no record
    /// and no runtime API commands (`lbctl plan` saves none: `apply FILE` leaves the admin
    /// state as it is).
    fn keep_problems(&self, at: &mut At) {
        let keep = &self.keep;
        let haproxy = self.files.iter().find(|f| f.service == Service::Haproxy);
        if haproxy.is_none_or(|f| f.path != keep.haproxy_config) {
            at(
                "keep.haproxy_config".into(),
                format!(
                    "{} is not the HAProxy configuration the plan writes",
                    field::quote(&keep.haproxy_config)
                ),
            );
        }
        if keep.record.is_some() {
            at(
                "keep.record".into(),
                "`lbctl plan` saves no admin record".into(),
            );
        }
        if !keep.commands.is_empty() {
            at(
                "keep.commands".into(),
                "`lbctl plan` saves no runtime API commands".into(),
            );
        }
    }
}

/// The problem the inventory's `rule` (a `source::field` or `spec` reader) finds in `text`,
/// read as the inventory's value would be; `None`: it passes.
fn inventory_rule(
    text: &str,
    rule: impl FnOnce(&Node, &mut Diagnostics) -> Option<String>,
) -> Option<String> {
    let node = Node::new(Value::Str(Arc::from(text)), Loc::new(&Arc::from("plan"), 1));
    let mut diags = Diagnostics::default();
    match rule(&node, &mut diags) {
        Some(_) => None,
        None => Some(
            diags
                .into_vec()
                .into_iter()
                .next()
                .map_or_else(|| "refused".to_string(), |d| d.message),
        ),
    }
}
