//! Who can take the VIP while its holder is changed. A full apply changes every other load
//! balancer before the holder, so they can; a partial one (`--limit`) may change the holder
//! with no other host changed first, and then some load balancer it leaves alone must be
//! ready to take the VIP over: the VIP configured, keepalived and HAProxy running (keepalived
//! tracks HAProxy, so a host without it gives the VIP away).

use crate::{
    deploy::DeployError,
    deploy::status::gather_status,
    deploy::survey::SshOptions,
    spec::{Fleet, HostSpec},
};

/// For each of `hosts`: ready to take the VIP, or why not.
pub async fn ready_to_take_the_vip(
    hosts: &[HostSpec],
    ssh: &SshOptions,
) -> Vec<(String, Result<(), DeployError>)> {
    let fleet = Fleet {
        lb_group: String::new(),
        hosts: hosts.to_vec(),
    };
    let tier = gather_status(&fleet, ssh.connect(), ssh.forks).await;
    tier.hosts
        .into_iter()
        .zip(hosts)
        .map(|(host, spec)| {
            let running = |daemon: &str| host.daemons.get(daemon).is_some_and(|d| d.running);
            let verdict = if let Some(e) = host.error {
                Err(DeployError::StandbyUnreachable(e))
            } else if spec.keepalived.as_ref().is_none_or(|k| k.vips.is_empty()) {
                Err(DeployError::StandbyWithoutVip)
            } else if !running("keepalived") {
                Err(DeployError::StandbyWithoutKeepalived)
            } else if !running("haproxy") {
                Err(DeployError::StandbyWithoutHaproxy)
            } else {
                Ok(())
            };
            (host.host, verdict)
        })
        .collect()
}
