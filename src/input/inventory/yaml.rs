//! YAML inventories: groups holding `hosts:`, `vars:` and `children:`.

use std::sync::Arc;

use super::{Inventory, check_group_name, host_pattern::expand_host_pattern, ini::split_port};
use crate::{
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node, Value, map_entries},
};

impl Inventory {
    pub(super) fn add_yaml(&mut self, root: &Node, diags: &mut Diagnostics) {
        let Value::Map(groups) = &root.value else {
            diags.push(
                Diagnostic::new(
                    &root.loc,
                    "",
                    "a YAML inventory must be a mapping of groups",
                )
                .hint("start with `all:` and put hosts under `hosts:` or `children:`"),
            );
            return;
        };
        for (name, loc, body) in groups {
            self.add_yaml_group(name, loc, body, diags);
        }
    }

    fn add_yaml_group(&mut self, name: &str, loc: &Loc, body: &Node, diags: &mut Diagnostics) {
        if let Err(d) = check_group_name(name, loc) {
            diags.push(d);
            return;
        }
        self.group_mut(name);
        let entries = match &body.value {
            Value::Null => return,
            Value::Map(entries) => entries,
            _ => {
                diags.push(Diagnostic::new(
                    &body.loc,
                    name,
                    format!("a group must be a mapping, found {}", body.kind()),
                ));
                return;
            }
        };
        for (key, key_loc, value) in entries {
            match &**key {
                "hosts" => {
                    let Value::Map(hosts) = &value.value else {
                        if value.value != Value::Null {
                            diags.push(Diagnostic::new(
                                key_loc,
                                format!("{name}.hosts"),
                                "hosts must be a mapping of host names",
                            ));
                        }
                        continue;
                    };
                    for (pattern, hloc, hvars) in hosts {
                        // `lb1:2222` sets ansible_port, as in an INI inventory (Ansible's
                        // YAML plugin parses host keys the same way)
                        let (pattern, port) = split_port(pattern);
                        let names = match expand_host_pattern(pattern) {
                            Ok(n) => n,
                            Err(e) => {
                                let hint = match e {
                                    crate::input::InputError::HostName { .. } => {
                                        "lbctl writes host names into configs and commands, so it takes fewer than Ansible: rename the host (its address goes in ansible_host)"
                                    }
                                    _ => {
                                        "write a host name, or a range such as `lb[1:3]` for lb1 to lb3"
                                    }
                                };
                                diags
                                    .push(Diagnostic::new(hloc, pattern, e.to_string()).hint(hint));
                                continue;
                            }
                        };
                        let vars =
                            match map_entries(hvars.clone(), &format!("{name}.hosts.{pattern}")) {
                                Ok(v) => v,
                                Err(d) => {
                                    diags.push(d);
                                    continue;
                                }
                            };
                        for host in names {
                            let host_vars = &mut self.host_mut(&host, hloc).vars;
                            if let Some(port) = port {
                                host_vars.insert(
                                    "ansible_port".into(),
                                    Arc::new(Node::new(Value::Int(port), *hloc)),
                                );
                            }
                            host_vars.extend(vars.clone());
                            self.group_mut(name).add_host(host);
                        }
                    }
                }
                "vars" => match map_entries(value.clone(), &format!("{name}.vars")) {
                    Ok(vars) => self.group_mut(name).vars.extend(vars),
                    Err(d) => diags.push(d),
                },
                "children" => {
                    let Value::Map(children) = &value.value else {
                        if value.value != Value::Null {
                            diags.push(Diagnostic::new(
                                key_loc,
                                format!("{name}.children"),
                                "children must be a mapping of group names",
                            ));
                        }
                        continue;
                    };
                    for (child, cloc, cbody) in children {
                        self.group_mut(name).add_child(child.to_string(), *cloc);
                        self.add_yaml_group(child, cloc, cbody, diags);
                    }
                }
                other => diags.push(
                    Diagnostic::new(key_loc, format!("{name}.{other}"), "unknown key in a group")
                        .hint("a group holds only `hosts:`, `vars:` and `children:`"),
                ),
            }
        }
    }
}
