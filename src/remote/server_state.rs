//! HAProxy's server state across reloads (`server_state.sh`): saved from the running process
//! right before every reload, into the `server-state-file` the next process starts from, so a
//! server DOWN, drained, in maintenance or re-weighted stays so instead of starting over.
//! Servers whose address or port changed in the configuration about to be loaded are left
//! out, because HAProxy would take the old port from the state over the configuration's.

/// The shell function `save_server_state SOCKET STATE_FILE CONFIG`.
pub(crate) const SCRIPT: &str = include_str!("server_state.sh");

#[cfg(test)]
mod tests {
    use super::*;

    /// `show servers state` from HAProxy 2.6 with three servers: two kept, one whose port
    /// changed in the new configuration.
    const STATE: &str = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
3 mysql 1 k8s-worker-1 10.0.0.1 2 0 1 1 5 15 3 3 6 0 0 0 - 30306 - 0 0 - - 0\n\
3 mysql 2 k8s-worker-2 10.0.0.2 0 8 1 1 5 7 2 0 6 0 0 0 - 30306 - 0 0 - - 0\n\
4 redis 1 w9 10.0.0.9 2 0 1 1 5 15 3 3 6 0 0 0 w9.example 30379 - 0 0 - - 0\n\
5 gone 1 s 10.0.0.1 2 0 1 1 5 15 3 3 6 0 0 0 - 1 - 0 0 - - 0\n";

    const CONFIG: &str = "global\n    stats socket /run/haproxy/admin.sock\n\
frontend fe_mysql\n    bind *:3306\n    default_backend mysql\n\
backend mysql\n    server k8s-worker-1 10.0.0.1:30306 check\n    server k8s-worker-2 10.0.0.2:31306 check\n\
backend redis\n    server w9 w9.example:30379 check\n\
peers lbs\n    server s 10.0.0.1:1\n";

    #[test]
    fn servers_whose_address_or_port_changed_start_from_the_configuration() {
        let dir = std::env::temp_dir().join(format!("lbctl-server-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("haproxy.cfg"), CONFIG).unwrap();
        std::fs::write(dir.join("dump"), STATE).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{SCRIPT}\nawk \"$SERVER_STATE_FILTER\" haproxy.cfg - <dump"
            ))
            .current_dir(&dir)
            .output()
            .expect("sh");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{out:?}");
        let kept = String::from_utf8(out.stdout).unwrap();
        let servers: Vec<&str> = kept
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(' ').nth(3).unwrap_or(l))
            .collect();
        assert_eq!(servers, ["1", "k8s-worker-1", "w9"], "{kept}");
    }
}
