//! What an apply hands a host: the changed files, how to check and reload each service there,
//! and what must be listening afterwards.

use std::collections::BTreeMap;

use crate::{
    deploy::{declared, plan::HostPlan},
    remote::{
        Deployment, FirstStart, Keep, ManagedFile, Record, ServiceControl, Verify,
        mark_nginx_servers, nginx_marks_of,
    },
    spec::HostSpec,
    spec::Reload,
    spec::Service,
    spec::UdpEngine,
};

/// `nginx -t` on a stream file alone: a throwaway main config that loads the stream module
/// (Debian's modules-enabled) and includes the file, as the README tells users to.
pub(crate) const NGINX_CHECK: &str = "f=$(mktemp) && printf 'include /etc/nginx/modules-enabled/*.conf;\\nerror_log stderr;\\npid %s.pid;\\nevents {}\\ninclude %s;\\n' \"$f\" {path} >\"$f\" && nginx -t -q -c \"$f\"; rc=$?; rm -f \"$f\" \"$f.pid\"; exit $rc";

/// How lbctl checks a file of `service` on the host before it goes live (`{path}`: the staged
/// file); the unit of the UDP health watcher has no check. A saved plan may carry no other.
pub(crate) fn check_command(service: Service) -> &'static str {
    match service {
        // Not `-q`: HAProxy 2.6 then prints nothing on a bad config, and the user needs why.
        Service::Haproxy => "haproxy -c -f {path}",
        Service::Keepalived => "keepalived -t -f {path}",
        Service::Nginx => NGINX_CHECK,
        Service::UdpHealth => "sh -n {path}",
        Service::UdpHealthUnit => "",
    }
}

/// The admin state an apply carries to a host: what lbctl's record there holds afterwards
/// (the tier's record for its servers), and the runtime API commands that put it back in
/// HAProxy after the reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admin {
    pub record: Record,
    pub commands: Vec<String>,
}

/// The services whose daemon an apply starts, rather than reloads, where it installs them, and
/// how. Debian's keepalived does not start without a configuration: the first apply to a fresh
/// host starts it (HAProxy and nginx run from their packages' own).
pub fn first_starts(spec: &HostSpec) -> Vec<(Service, FirstStart)> {
    spec.keepalived
        .iter()
        .map(|_| {
            let start = FirstStart {
                start: spec.daemons.keepalived_start.clone(),
                stop: spec.daemons.keepalived_stop.clone(),
                pid_file: spec.daemons.keepalived_pid_file.clone(),
            };
            (Service::Keepalived, start)
        })
        .collect()
}

/// What an apply hands `spec`'s host for `plan`. A changed nginx stream file goes with the
/// marks (`down`, `weight=N`) the tier's record in `admin` asks for, so that a drained UDP
/// server stays out of rotation across the apply.
pub fn build(spec: &HostSpec, plan: &HostPlan, admin: Option<&Admin>) -> Deployment {
    let marks = admin.map(|a| nginx_marks_of(&a.record)).unwrap_or_default();
    let files = plan
        .changed_files()
        .map(|f| ManagedFile {
            service: f.service,
            path: f.path.clone(),
            content: if f.service == Service::Nginx && !marks.is_empty() {
                mark_nginx_servers(&f.content, &marks)
            } else {
                f.content.clone()
            },
        })
        .collect();
    let mut controls = BTreeMap::new();
    controls.insert(
        Service::Haproxy,
        ServiceControl {
            check: check_command(Service::Haproxy).into(),
            reload: spec.haproxy.reload.shell(),
            running: running(&spec.haproxy.reload, "HAProxy", &spec.haproxy.pid_file),
            first_start: None,
        },
    );
    if let Some(k) = &spec.keepalived {
        controls.insert(
            Service::Keepalived,
            ServiceControl {
                check: check_command(Service::Keepalived).into(),
                reload: k.reload.shell(),
                running: running(&k.reload, "keepalived", &spec.daemons.keepalived_pid_file),
                first_start: first_starts(spec)
                    .into_iter()
                    .find_map(|(service, start)| (service == Service::Keepalived).then_some(start)),
            },
        );
    }
    if let UdpEngine::Nginx {
        reload: reload_method,
        ..
    } = &spec.udp_engine
    {
        // With UDP services, nginx's file is the watcher's copy of lbctl's: `sync` writes it,
        // servers not UP in HAProxy marked down, and reloads nginx when it changed.
        let reload = match &spec.udp_health {
            Some(w) => format!("{} sync", w.script_path),
            None => reload_method.shell(),
        };
        // the watcher's `sync` reloads nginx as `nginx_reload_method` says
        let running = spec
            .udp_health
            .as_ref()
            .and_then(|w| running(reload_method, "nginx", &w.nginx_pid_file));
        controls.insert(
            Service::Nginx,
            ServiceControl {
                check: check_command(Service::Nginx).into(),
                reload,
                running,
                first_start: None,
            },
        );
    }
    let mut pid_files = Vec::new();
    if let Some(w) = &spec.udp_health {
        // a restart, which starts the watcher when it does not run
        let restart = w.reload.shell();
        controls.insert(
            Service::UdpHealth,
            ServiceControl {
                check: check_command(Service::UdpHealth).into(),
                reload: restart.clone(),
                running: None,
                first_start: None,
            },
        );
        controls.insert(
            Service::UdpHealthUnit,
            ServiceControl {
                check: check_command(Service::UdpHealthUnit).into(),
                reload: restart,
                running: None,
                first_start: None,
            },
        );
        pid_files.push(("the UDP health watcher".to_string(), w.pid_file.clone()));
    }
    // What the rendered files declare (the plan holds every file, changed or not).
    let declared =
        declared::declared_by(plan.files.iter().map(|f| (f.service, f.content.as_str())));
    Deployment {
        host: spec.name.clone(),
        files,
        controls,
        verify: Verify {
            haproxy_master_socket: Some(spec.haproxy.master_socket.clone()),
            haproxy_runtime_socket: declared.socket,
            tcp_ports: declared.tcp,
            udp_ports: declared.udp,
            pid_files,
        },
        keep: Keep {
            state_file: Some(spec.haproxy.server_state_file.clone()),
            haproxy_config: spec.haproxy.config_path.clone(),
            record_path: spec.admin_record.clone(),
            record: admin.map(|a| a.record.text()),
            commands: admin.map(|a| a.commands.clone()).unwrap_or_default(),
        },
    }
}

/// The daemon `reload` needs running, when it needs one: `what` it is, and its pid file.
fn running(reload: &Reload, what: &str, pid_file: &str) -> Option<(String, String)> {
    reload
        .needs_running()
        .then(|| (what.to_string(), pid_file.to_string()))
}
