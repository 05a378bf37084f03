//! What an apply hands a host: the changed files, how to check and reload each service there,
//! and what must be listening afterwards.

use std::collections::BTreeMap;

use crate::{
    deploy::{declared, plan::HostPlan},
    remote::{Deployment, ManagedFile, ServiceControl, Verify},
    spec::HostSpec,
    spec::Service,
    spec::UdpEngine,
};

/// `nginx -t` on a stream file alone: a throwaway main config that loads the stream module
/// (Debian's modules-enabled) and includes the file, as the README tells users to.
const NGINX_CHECK: &str = "f=$(mktemp) && printf 'include /etc/nginx/modules-enabled/*.conf;\\nerror_log stderr;\\npid %s.pid;\\nevents {}\\ninclude %s;\\n' \"$f\" {path} >\"$f\" && nginx -t -q -c \"$f\"; rc=$?; rm -f \"$f\" \"$f.pid\"; exit $rc";

pub fn build(spec: &HostSpec, plan: &HostPlan) -> Deployment {
    let files = plan
        .changed_files()
        .map(|f| ManagedFile {
            service: f.service,
            path: f.path.clone(),
            content: f.content.clone(),
        })
        .collect();
    let mut controls = BTreeMap::new();
    controls.insert(
        Service::Haproxy,
        ServiceControl {
            // Not `-q`: HAProxy 2.6 then prints nothing on a bad config, and the user needs why.
            check: "haproxy -c -f {path}".into(),
            reload: spec.haproxy.reload.shell(),
        },
    );
    if let Some(k) = &spec.keepalived {
        controls.insert(
            Service::Keepalived,
            ServiceControl {
                check: "keepalived -t -f {path}".into(),
                reload: k.reload.shell(),
            },
        );
    }
    if let UdpEngine::Nginx { reload, .. } = &spec.udp_engine {
        controls.insert(
            Service::Nginx,
            ServiceControl {
                check: NGINX_CHECK.into(),
                reload: reload.shell(),
            },
        );
    }
    // What the rendered files declare (the plan holds every file, changed or not).
    let content = |service: Service| {
        plan.files
            .iter()
            .find(|f| f.service == service)
            .map(|f| f.content.as_str())
    };
    let declared = declared::declared(
        content(Service::Haproxy).unwrap_or_default(),
        content(Service::Nginx),
    );
    Deployment {
        files,
        controls,
        verify: Verify {
            haproxy_runtime_socket: declared.socket,
            tcp_ports: declared.tcp,
            udp_ports: declared.udp,
        },
    }
}
