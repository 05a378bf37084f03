//! An HTTP listener (`haproxy_http_frontends`): the ports, the TLS certificate, the redirect to
//! HTTPS, the forwarded headers and the per-client rate limit that every HTTP service behind
//! it shares. The services themselves, and which requests each one takes, are
//! `haproxy_http_backends` (see `http_backend.rs`).

use std::collections::HashMap;

use serde::Serialize;

use crate::{
    source::field::{self, Duration},
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node},
};

#[derive(Debug, Clone, Serialize)]
pub struct HttpFrontend {
    pub name: String,
    pub bind: String,
    /// Plain HTTP listener.
    pub port: Option<u16>,
    /// HTTPS listener, terminating TLS with `tls_certs`.
    pub tls_port: Option<u16>,
    /// PEM bundles (certificate, chain and key); HAProxy picks one by the client's server name.
    pub tls_certs: Vec<String>,
    /// Plain HTTP requests are answered with a 301 to the same URL over HTTPS.
    pub redirect_https: bool,
    pub rate_limit: Option<RateLimit>,
    /// `X-Forwarded-For` (the client's address) and `X-Forwarded-Proto` (`http`/`https`).
    pub forwarded_headers: bool,
    /// Filled from the backends that name this frontend, most specific first.
    pub routes: Vec<HttpRoute>,
    pub default_backend: Option<String>,
    #[serde(skip)]
    pub index: usize,
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip)]
    pub port_loc: Option<Loc>,
    #[serde(skip)]
    pub tls_port_loc: Option<Loc>,
    /// Each certificate's key path (`haproxy_http_frontends[0].tls_cert`) and where it was
    /// written, in the order of `tls_certs`.
    #[serde(skip)]
    pub tls_cert_sources: Vec<(String, Loc)>,
}

/// At most `requests` requests per `period` from one client address; past that HAProxy answers
/// 429 Too Many Requests until the client's rate falls back under the limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    pub requests: u32,
    pub period: Duration,
}

/// Which requests go to one backend: any of its hosts (when it has some) and its path prefix
/// (when it has one).
#[derive(Debug, Clone, Serialize)]
pub struct HttpRoute {
    pub backend: String,
    /// Exact host names, matched case-insensitively and without the port.
    pub hosts: Vec<String>,
    /// Host suffixes (`.example.com` from `*.example.com`).
    pub host_suffixes: Vec<String>,
    /// The path itself (`/api`), when the prefix has no trailing slash.
    pub path_exact: Option<String>,
    /// Everything under the prefix (`/api/`).
    pub path_under: Option<String>,
}

impl HttpRoute {
    pub fn has_hosts(&self) -> bool {
        !self.hosts.is_empty() || !self.host_suffixes.is_empty()
    }
}

pub const VAR: &str = "haproxy_http_frontends";

const KEYS: &[&str] = &[
    "name",
    "bind",
    "port",
    "tls_port",
    "tls_cert",
    "redirect_https",
    "rate_limit",
    "forwarded_headers",
];

/// Reads `haproxy_http_frontends`. `default_bind` is `haproxy_bind_address`.
pub fn parse_list(node: &Node, default_bind: &str, diags: &mut Diagnostics) -> Vec<HttpFrontend> {
    let items = field::list(node, VAR, "frontends", diags);
    let frontends: Vec<HttpFrontend> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| parse_frontend(item, i, default_bind, diags))
        .collect();
    let mut first_by_name: HashMap<&str, &Loc> = HashMap::new();
    for f in &frontends {
        if let Some(first) = first_by_name.insert(&f.name, &f.loc) {
            diags.push(
                Diagnostic::new(
                    &f.loc,
                    format!("{VAR}[{}].name", f.index),
                    format!("duplicate frontend name `{}`", f.name),
                )
                .hint(format!(
                    "already used at {first}; frontend names must be unique"
                )),
            );
        }
    }
    frontends
}

fn parse_frontend(
    node: &Node,
    index: usize,
    default_bind: &str,
    diags: &mut Diagnostics,
) -> Option<HttpFrontend> {
    let path = format!("{VAR}[{index}]");
    let path = path.as_str();
    let entries = field::mapping(node, path, KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| field::entry(entries, k);
    let key = |k: &str| field::join(path, k);
    let name = field::required(node, get("name"), path, "name", diags)
        .and_then(|n| field::identifier(n, &key("name"), diags));
    let bind = match get("bind") {
        None => Some(default_bind.to_string()),
        Some(n) => field::bind_address(n, &key("bind"), diags),
    };
    let port = get("port").and_then(|n| field::port(n, &key("port"), diags));
    let tls_port = get("tls_port").and_then(|n| field::port(n, &key("tls_port"), diags));
    let mut tls_certs = Vec::new();
    let mut tls_cert_sources = Vec::new();
    if let Some(n) = get("tls_cert") {
        for (p, item) in field::one_or_many(n, &key("tls_cert"), diags) {
            if let Some(cert) = field::abs_path(item, &p, diags) {
                tls_certs.push(cert);
                tls_cert_sources.push((p, item.loc));
            }
        }
    }
    match (get("tls_port"), get("tls_cert")) {
        (Some(n), None) => diags.push(
            Diagnostic::new(&n.loc, key("tls_port"), "`tls_port` without `tls_cert`")
                .hint("add `tls_cert:` with the PEM bundle (certificate, chain and key) HAProxy terminates TLS with"),
        ),
        (None, Some(n)) => diags.push(
            Diagnostic::new(&n.loc, key("tls_cert"), "`tls_cert` without `tls_port`")
                .hint("add `tls_port: 443` (the port HTTPS is served on)"),
        ),
        _ => {}
    }
    if get("port").is_none() && get("tls_port").is_none() {
        diags.push(
            Diagnostic::new(
                &node.loc,
                key("port"),
                "a frontend needs `port`, `tls_port` or both",
            )
            .hint("`port: 80` serves plain HTTP; `tls_port: 443` with `tls_cert:` serves HTTPS"),
        );
    }
    let both = get("port").is_some() && get("tls_port").is_some();
    let redirect_https = match get("redirect_https") {
        None => both,
        Some(n) => {
            let on = field::boolean(n, &key("redirect_https"), diags).unwrap_or(false);
            if on && !both {
                diags.push(
                    Diagnostic::new(
                        &n.loc,
                        key("redirect_https"),
                        "`redirect_https` needs both `port` and `tls_port`",
                    )
                    .hint(
                        "the redirect sends plain HTTP requests on `port` to HTTPS on `tls_port`",
                    ),
                );
            }
            on
        }
    };
    let rate_limit = get("rate_limit").and_then(|n| rate_limit(n, &key("rate_limit"), diags));
    let forwarded_headers = get("forwarded_headers")
        .and_then(|n| field::boolean(n, &key("forwarded_headers"), diags))
        .unwrap_or(true);
    if diags.len() > before {
        return None;
    }
    Some(HttpFrontend {
        name: name?,
        bind: bind?,
        port,
        tls_port,
        tls_certs,
        redirect_https,
        rate_limit,
        forwarded_headers,
        routes: Vec::new(),
        default_backend: None,
        index,
        loc: node.loc,
        port_loc: get("port").map(|n| n.loc),
        tls_port_loc: get("tls_port").map(|n| n.loc),
        tls_cert_sources,
    })
}

/// `100/10s`: at most 100 requests in any 10 seconds. A bare unit is one of it (`600/m`).
pub fn rate_limit(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<RateLimit> {
    let text = node.as_text().unwrap_or_default();
    match parse_rate_limit(&text) {
        Some(r) => Some(r),
        None => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path,
                    format!("{} is not a rate limit", field::quote(&text)),
                )
                .hint("write REQUESTS/PERIOD, e.g. 100/10s or 600/1m: at least 1 request, a period from 1s to 1d"),
            );
            None
        }
    }
}

pub fn parse_rate_limit(text: &str) -> Option<RateLimit> {
    let (n, period) = text.split_once('/')?;
    let requests: u32 = n
        .trim()
        .parse()
        .ok()
        .filter(|&n| (1..=10_000_000).contains(&n))?;
    let period = period.trim();
    let period = if period.starts_with(|c: char| c.is_ascii_digit()) {
        period.to_string()
    } else {
        format!("1{period}")
    };
    let ms = field::parse_duration(&period)?;
    (1000..=86_400_000).contains(&ms).then_some(RateLimit {
        requests,
        period: Duration { text: period, ms },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits() {
        let r = parse_rate_limit("100/10s").unwrap();
        assert_eq!(
            (r.requests, r.period.text.as_str(), r.period.ms),
            (100, "10s", 10_000)
        );
        assert_eq!(parse_rate_limit("600/m").unwrap().period.text, "1m");
        assert_eq!(parse_rate_limit("100"), None);
        assert_eq!(parse_rate_limit("0/10s"), None);
        assert_eq!(parse_rate_limit("100/10"), None, "10 ms is below a second");
        assert_eq!(parse_rate_limit("100/2d"), None);
        assert_eq!(parse_rate_limit("lots/10s"), None);
    }
}
