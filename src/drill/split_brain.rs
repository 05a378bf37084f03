//! Every drill asks who holds the VIP before it breaks anything and after it put everything
//! back: exactly one load balancer per VIP. Two (split brain) or none before is no tier to
//! drill; after, it is a failure of the drill.

use std::sync::Arc;

use crate::{
    deploy::{holders_by_vip, vip_problems},
    drill::DrillError,
    remote::{Query, parse_lb_state},
    spec::HostSpec,
    ssh::{self, Session},
};

/// What is wrong with who holds the VIPs right now, asking every load balancer at once; a
/// host that cannot say is a problem too. Empty: one holder per VIP, or none where one of
/// `left_out` (load balancers with a VIP, not asked: see [`vip_problems`]) may hold it.
pub async fn problems(
    lbs: &[HostSpec],
    left_out: &[String],
    sessions: &[Arc<Session>],
) -> Vec<String> {
    let scripts = lbs.iter().map(|h| Query::vips_only(h).script()).collect();
    let outputs = ssh::run_all(sessions, scripts).await;
    let mut problems = Vec::new();
    let mut answers = Vec::new();
    for (spec, out) in lbs.iter().zip(outputs) {
        let state = out.map_err(DrillError::from).and_then(|o| {
            parse_lb_state(&o.stdout).map_err(|e| DrillError::Report(e.with_output(o)))
        });
        match state {
            Ok(state) => answers.push((spec.name.as_str(), state.vips)),
            Err(e) => problems.push(format!(
                "{}: cannot tell whether it holds the VIP: {e}",
                spec.name
            )),
        }
    }
    problems.extend(vip_problems(
        &holders_by_vip(answers.iter().map(|(h, v)| (*h, v))),
        left_out,
    ));
    problems
}
