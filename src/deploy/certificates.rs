//! The TLS certificates HAProxy terminates TLS with (`tls_cert`) live on the load balancers,
//! not in lbctl's input: a missing one would only surface when a host's own `haproxy -c`
//! refuses the staged config, halfway through a rollout. `plan` and `apply` ask every surveyed
//! host first, on the session the survey opened, and report a missing file like any other
//! invalid input: located, before any host is touched. Only existence is asked; a PEM bundle
//! holds a private key, and its content never leaves the host.

use std::{collections::BTreeMap, fmt::Write};

use crate::{
    deploy::survey::{Surveyed, close_surveyed},
    remote,
    render::RenderedHost,
    source::Diagnostic,
    source::Loc,
    spec::HostSpec,
};

/// The survey, when every surveyed host holds every certificate it is configured with;
/// otherwise the sessions are closed and every missing certificate is a diagnostic.
pub async fn check_certificates(
    surveyed: Vec<Surveyed>,
    hosts: &[(HostSpec, RenderedHost)],
) -> Result<Vec<Surveyed>, Vec<Diagnostic>> {
    let problems = check(&surveyed, hosts).await;
    if problems.is_empty() {
        Ok(surveyed)
    } else {
        close_surveyed(surveyed).await;
        Err(problems)
    }
}

/// Every certificate that some surveyed host lacks, one diagnostic per configured certificate
/// naming the hosts. Hosts the survey could not reach are left to the survey's own report.
async fn check(surveyed: &[Surveyed], hosts: &[(HostSpec, RenderedHost)]) -> Vec<Diagnostic> {
    let mut missing: BTreeMap<(String, String, String, usize), Vec<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (s, (spec, _)) in surveyed.iter().zip(hosts) {
        let certs: Vec<(&str, &str, &Loc)> = spec.certificates().collect();
        let Some(session) = &s.session else { continue };
        if certs.is_empty() {
            continue;
        }
        // Prints the certificates that are not regular files; paths are plain (checked by
        // `field::abs_path`), so one per line is unambiguous.
        let mut script = String::new();
        for (path, _, _) in &certs {
            let _ = writeln!(
                script,
                "[ -f {0} ] || printf '%s\\n' {0}",
                remote::quote(path)
            );
        }
        let absent: Vec<String> = match session.run(&script).await {
            Ok(out) if out.success() => String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
            Ok(out) => {
                errors.push(host_error(
                    spec,
                    &certs,
                    &String::from_utf8_lossy(&out.stderr),
                ));
                continue;
            }
            Err(e) => {
                errors.push(host_error(spec, &certs, &e.to_string()));
                continue;
            }
        };
        for (path, key, loc) in certs
            .iter()
            .filter(|(p, _, _)| absent.iter().any(|a| a == p))
        {
            missing
                .entry((
                    path.to_string(),
                    key.to_string(),
                    loc.file.to_string(),
                    loc.line as usize,
                ))
                .or_default()
                .push(spec.name.clone());
        }
    }
    let mut out: Vec<Diagnostic> = missing
        .into_iter()
        .map(|((path, key, file, line), hosts)| {
            let loc = Loc::new(&file.into(), line);
            Diagnostic::new(
                &loc,
                key,
                format!("{path} is not a file on {}", hosts.join(", ")),
            )
            .hint("HAProxy reads the PEM bundle (certificate, chain and key) on the load balancer: put it there before applying")
        })
        .collect();
    out.extend(errors);
    out
}

fn host_error(spec: &HostSpec, certs: &[(&str, &str, &Loc)], message: &str) -> Diagnostic {
    let (_, key, loc) = certs[0];
    Diagnostic::new(
        loc,
        key,
        format!(
            "cannot check the TLS certificates on {}: {}",
            spec.name,
            message.trim()
        ),
    )
}
