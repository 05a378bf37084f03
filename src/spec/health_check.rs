//! An HTTP health check (`option httpchk`): a server is UP only while it answers a request
//! for `path` with `expect_status`. Works for HTTP backends and for TCP backends whose servers
//! speak HTTP(S) on the same port, such as kube-apiserver's `/readyz`.

use serde::Serialize;

use crate::{
    source::Node,
    source::field,
    source::{Diagnostic, Diagnostics},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub path: String,
    pub expect_status: u16,
    /// The `Host` header; without one the check is an HTTP/1.0 request, which needs none.
    pub host: Option<String>,
    /// Check over TLS (`check-ssl`), without verifying the server's certificate: the check
    /// asks whether the server is up, not who it is.
    pub tls: bool,
}

const KEYS: &[&str] = &["path", "expect_status", "host", "tls"];

/// Reads `health_check: {path: /healthz, expect_status: 200}`. `default_host` is used for the
/// `Host` header when none is given (an HTTP backend's first host name).
pub fn parse(
    node: &Node,
    path: &str,
    default_host: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<HealthCheck> {
    let entries = field::mapping(node, path, KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| field::entry(entries, k);
    let check_path = match get("path") {
        Some(n) => url_path(n, &field::join(path, "path"), diags),
        None => Some("/".to_string()),
    };
    let expect_status = match get("expect_status") {
        Some(n) => field::int(n, &field::join(path, "expect_status"), 100, 599, diags),
        None => Some(200),
    };
    let host = match get("host") {
        Some(n) => field::server_name(n, &field::join(path, "host"), diags).map(Some),
        None => Some(default_host.map(str::to_string)),
    };
    let tls = get("tls")
        .and_then(|n| field::boolean(n, &field::join(path, "tls"), diags))
        .unwrap_or(false);
    if diags.len() > before {
        return None;
    }
    Some(HealthCheck {
        path: check_path?,
        expect_status: expect_status? as u16,
        host: host?,
        tls,
    })
}

/// A URL path that can be written into HAProxy's config as one word: starts with `/`, and
/// holds no space, quote, `#`, brace or backslash.
pub fn url_path(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = field::string(node, path, diags)?;
    let ok = text.starts_with('/')
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '/' | '-'
                        | '.'
                        | '_'
                        | '~'
                        | '%'
                        | ':'
                        | '@'
                        | '!'
                        | '$'
                        | '&'
                        | '+'
                        | ','
                        | '='
                        | '?'
                )
        });
    if ok {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("{} is not a URL path", field::quote(&text)),
            )
            .hint("start it with `/` and use letters, digits and `/-._~%:@!$&+,=?`, e.g. /healthz"),
        );
        None
    }
}
