//! TLS passthrough routed by server name: TCP backends that share a port, each claiming the
//! names (`sni:`) whose connections it takes, rendered as one frontend that reads the name
//! from the client's TLS hello (`req.ssl_sni`) without decrypting anything.

use std::collections::HashMap;

use serde::Serialize;

use crate::{
    source::Loc,
    source::{Diagnostic, Diagnostics},
    spec::backend::Backend,
};

/// One listener shared by SNI-routed backends.
#[derive(Debug, Clone, Serialize)]
pub struct SniFrontend {
    /// `sni_443`, or `sni_<address>_443` when it listens on one address only.
    pub name: String,
    pub bind: String,
    pub port: u16,
    /// Exact names first, then wildcards, longest suffix first: HAProxy takes the first
    /// `use_backend` that matches, so the most specific claim wins.
    pub routes: Vec<SniRoute>,
    pub default_backend: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SniRoute {
    pub backend: String,
    /// Exact server names, matched case-insensitively.
    pub names: Vec<String>,
    /// Name suffixes (`.example.com` from `*.example.com`).
    pub suffixes: Vec<String>,
}

/// Groups the SNI-routed backends by listener and checks each group: a server name claimed by
/// two backends, two defaults, or no default are errors.
pub fn frontends(backends: &[Backend], diags: &mut Diagnostics) -> Vec<SniFrontend> {
    let mut groups: Vec<Vec<&Backend>> = Vec::new();
    let mut by_listener: HashMap<(&str, u16), usize> = HashMap::new();
    for b in backends.iter().filter(|b| b.sni_routed()) {
        let i = *by_listener
            .entry((b.bind.as_str(), b.port))
            .or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
        groups[i].push(b);
    }
    groups.iter().map(|g| frontend(g, diags)).collect()
}

fn frontend(group: &[&Backend], diags: &mut Diagnostics) -> SniFrontend {
    let first = group[0];
    let (bind, port) = (first.bind.clone(), first.port);
    let mut claimed: HashMap<&str, (&Backend, &Loc)> = HashMap::new();
    let mut exact = Vec::new();
    let mut wildcard = Vec::new();
    for b in group {
        let mut route = SniRoute {
            backend: b.name.clone(),
            names: Vec::new(),
            suffixes: Vec::new(),
        };
        for (i, (name, loc)) in b.sni.iter().zip(&b.sni_locs).enumerate() {
            if let Some((other, other_loc)) = claimed.get(name.as_str()) {
                if other.name != b.name {
                    diags.push(
                        Diagnostic::new(
                            loc,
                            format!("{}.sni[{i}]", b.path()),
                            format!(
                                "server name `{name}` on port {port} is claimed by backends `{}` ({other_loc}) and `{}`",
                                other.name, b.name
                            ),
                        )
                        .hint("a TLS connection goes to one backend: keep the name on one of them"),
                    );
                }
                continue;
            }
            claimed.insert(name, (b, loc));
            match name.strip_prefix('*') {
                Some(suffix) => route.suffixes.push(suffix.to_string()),
                None => route.names.push(name.clone()),
            }
        }
        if !route.names.is_empty() {
            exact.push(SniRoute {
                suffixes: Vec::new(),
                ..route.clone()
            });
        }
        if !route.suffixes.is_empty() {
            wildcard.push(SniRoute {
                names: Vec::new(),
                ..route
            });
        }
    }
    wildcard.sort_by_key(|r| std::cmp::Reverse(r.suffixes.iter().map(String::len).max()));
    let defaults: Vec<&&Backend> = group.iter().filter(|b| b.sni_default).collect();
    if let [first_default, rest @ ..] = defaults.as_slice() {
        for b in rest {
            diags.push(
                Diagnostic::new(
                    b.sni_default_loc.as_ref().unwrap_or(&b.loc),
                    format!("{}.sni_default", b.path()),
                    format!(
                        "backends `{}` ({}) and `{}` are both the default on port {port}",
                        first_default.name,
                        first_default.sni_default_loc.as_ref().unwrap_or(&first_default.loc),
                        b.name
                    ),
                )
                .hint("connections whose server name matches no backend go to one default: keep `sni_default: true` on one of them"),
            );
        }
    } else {
        diags.push(
            Diagnostic::new(
                first.sni_locs.first().unwrap_or(&first.loc),
                format!("{}.sni", first.path()),
                format!(
                    "no backend on port {port} takes connections whose server name matches no `sni` (nor clients that send none)"
                ),
            )
            .hint(format!(
                "add `sni_default: true` to the backend that should take them (backends here: {})",
                group.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")
            )),
        );
    }
    SniFrontend {
        name: if bind == "*" {
            format!("sni_{port}")
        } else {
            format!("sni_{bind}_{port}")
        },
        bind,
        port,
        routes: exact.into_iter().chain(wildcard).collect(),
        default_backend: defaults.first().map(|b| b.name.clone()),
    }
}
