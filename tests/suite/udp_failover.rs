//! UDP that fails over (issue 16's acceptance), on the lab: with k8s-worker-2's UDP NodePort
//! dropped, every load balancer stops sending new flows to it within the detection budget
//! and no new flow fails after that; once the rule is gone it serves again within the
//! recovery budget. `failover-test --backend wireguard` drills the same; lbctl's UDP health
//! watcher survives an apply, an nginx reload and a restart of a whole load balancer.
//!
//!     sudo -E cargo test --test suite -- udp_failover:: --nocapture

use std::{
    net::UdpSocket,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::{self, sleep},
    time::{Duration, Instant},
};

use crate::support::lab::{CLIENT_NS, LBS, Lab, STATE_DIR, VIP, describe, wait_for};
use crate::support::{self, Lbctl};

const WORKER: &str = "k8s-worker-2";
const NODEPORT: u16 = 31820;
const FRONTEND: u16 = 51820;
/// The lab's checks: inter 1 s, fall 2, rise 2: `inter × fall + inter`, `inter × rise + inter`.
const DETECT_BUDGET: Duration = Duration::from_millis(3000);
const RECOVER_BUDGET: Duration = Duration::from_millis(3000);
/// The comment on the rule these tests put on the worker by hand.
const TAG: &str = "lbctl-udp-acceptance";

/// lbctl's configuration on every load balancer, and every server UP and in nginx.
fn applied(lab: &Lab) {
    Lbctl::on_lab().args(["apply", "--yes"]).timeout(300).run();
    all_serving(lab);
}

fn all_serving(lab: &Lab) {
    lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    support::wait_every_server(
        Duration::from_secs(30),
        "every server UP on every LB, and every UDP one in nginx",
        |s| s["up"] == true && s["nginx_down"] != true,
    );
}

/// nginx's stream file on a load balancer, as the watcher wrote it (read from the machine).
fn live_file(lb: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("hosts/{lb}/etc/nginx/lbctl-stream.conf"))
}

/// Whether nginx on `lb` keeps the worker's WireGuard server out: marked down in its file,
/// and the reload that made it so taken effect (the watcher's record, which `status` and
/// `failover-test` read).
fn marked(lb: &str) -> bool {
    let applied = PathBuf::from(STATE_DIR).join(format!("hosts/{lb}/etc/lbctl/nginx-down"));
    let key = format!("wireguard/{WORKER}");
    std::fs::read_to_string(applied)
        .unwrap_or_default()
        .lines()
        .any(|l| l == key)
        && std::fs::read_to_string(live_file(lb))
            .unwrap_or_default()
            .contains(&format!("; # lbctl:{key} down"))
}

/// The end of each load balancer's watcher log, for a failure message.
fn watcher_logs() -> String {
    LBS.iter()
        .map(|lb| {
            let log = std::fs::read_to_string(
                PathBuf::from(STATE_DIR)
                    .join(format!("hosts/{}/log/lbctl-udp-health.log", lb.name)),
            )
            .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            format!(
                "{}'s watcher log:\n{}\n",
                lb.name,
                lines[lines.len().saturating_sub(8)..].join("\n")
            )
        })
        .collect()
}

/// Polls every 50 ms (for at most `limit`) until `want` holds on every load balancer;
/// returns when it first held on each.
fn when_each(limit: Duration, what: &str, want: impl Fn(&str) -> bool) -> Vec<Instant> {
    let start = Instant::now();
    let mut at: Vec<Option<Instant>> = vec![None; LBS.len()];
    loop {
        for (i, lb) in LBS.iter().enumerate() {
            if at[i].is_none() && want(lb.name) {
                at[i] = Some(Instant::now());
            }
        }
        if at.iter().all(Option::is_some) {
            return at.into_iter().flatten().collect();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not on every load balancer within {limit:?}: {:?}\n{}",
            LBS.iter()
                .zip(&at)
                .map(|(lb, at)| (lb.name, at.map(|t| t - start)))
                .collect::<Vec<_>>(),
            watcher_logs()
        );
        sleep(Duration::from_millis(50));
    }
}

/// The rule that drops the worker's UDP NodePort, put in (`-I`) or taken out (`-D`).
fn udp_rule(lab: &Lab, action: &str) {
    let out = lab.exec(
        WORKER,
        &[
            "iptables",
            "-w",
            "5",
            "-t",
            "raw",
            action,
            "PREROUTING",
            "-p",
            "udp",
            "--dport",
            "31820",
            "-m",
            "comment",
            "--comment",
            TAG,
            "-j",
            "DROP",
        ],
    );
    assert!(out.status.success(), "{}", describe("iptables", &out));
}

/// One datagram, from a socket of its own: a new flow.
#[derive(Debug, Clone)]
struct Flow {
    target: usize,
    sent: Instant,
    /// The worker that answered (the lab's WireGuard echoes its name), within a second.
    answer: Option<String>,
}

/// The lab probe: one datagram per new source port to each target, 10 a second each, and a
/// second for each reply; bounded by `limit` whatever happens to the test.
struct FlowProbe {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<Vec<Flow>>,
}

impl FlowProbe {
    fn start(targets: Vec<String>, limit: Duration) -> FlowProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let (tx, rx) = mpsc::channel();
            let start = Instant::now();
            let mut flows = 0;
            while !stopping.load(Ordering::Relaxed) && start.elapsed() < limit {
                for (target, address) in targets.iter().enumerate() {
                    let tx = tx.clone();
                    let address = address.clone();
                    flows += 1;
                    thread::spawn(move || {
                        let sent = Instant::now();
                        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
                        socket
                            .set_read_timeout(Some(Duration::from_secs(1)))
                            .unwrap();
                        let mut buf = [0u8; 256];
                        let answer = socket
                            .send_to(b"lbctl acceptance probe\n", (address.as_str(), FRONTEND))
                            .and_then(|_| socket.recv(&mut buf))
                            .ok()
                            .map(|n| String::from_utf8_lossy(&buf[..n]).trim().to_string());
                        let _ = tx.send(Flow {
                            target,
                            sent,
                            answer,
                        });
                    });
                }
                sleep(Duration::from_millis(100));
            }
            drop(tx);
            let mut all: Vec<Flow> = rx.iter().take(flows).collect();
            all.sort_by_key(|f| f.sent);
            all
        });
        FlowProbe { stop, thread }
    }

    fn stop(self) -> Vec<Flow> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Issue 16's acceptance, as written: k8s-worker-2's UDP NodePort dropped; every load
/// balancer (probed at its own address, and the VIP at its holder) stops sending it new flows
/// within the detection budget, after which not one flow fails; the rule removed, every load
/// balancer takes it back within the recovery budget and it serves again.
#[test]
fn a_dropped_udp_nodeport_stops_getting_flows_within_budget() {
    let lab = Lab::up();
    applied(&lab);
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    let mut targets: Vec<String> = LBS.iter().map(|lb| lb.ip.to_string()).collect();
    targets.push(VIP.to_string());
    let probe = FlowProbe::start(targets.clone(), Duration::from_secs(60));
    sleep(Duration::from_secs(2));

    // The fault counts from before the command that puts the rule in (so detection can only
    // look slower than it was); the worker is silent once the command is done.
    let fault_on = Instant::now();
    udp_rule(&lab, "-I");
    let silent = Instant::now();
    let detected = when_each(DETECT_BUDGET * 3, "worker-2 marked down in nginx", marked);
    sleep(Duration::from_secs(5));
    let fault_off = Instant::now();
    udp_rule(&lab, "-D");
    let recovered = when_each(RECOVER_BUDGET * 3, "worker-2 back in nginx", |lb| {
        !marked(lb)
    });
    sleep(Duration::from_secs(3));
    let flows = probe.stop();

    let ms = |d: Duration| d.as_millis();
    let mut report = Vec::new();
    for (i, lb) in LBS.iter().enumerate() {
        report.push(format!(
            "{}: out of nginx {} ms after the rule, back {} ms after its removal",
            lb.name,
            ms(detected[i] - fault_on),
            ms(recovered[i] - fault_off)
        ));
    }
    for (t, address) in targets.iter().enumerate() {
        let lb = LBS
            .iter()
            .position(|lb| lb.ip == address)
            .unwrap_or_else(|| LBS.iter().position(|lb| lb.name == holder.name).unwrap());
        let mine: Vec<&Flow> = flows.iter().filter(|f| f.target == t).collect();
        let failed = |from: Instant, to: Instant| {
            mine.iter()
                .filter(|f| f.sent >= from && f.sent < to && f.answer.is_none())
                .count()
        };
        let during: Vec<&&Flow> = mine
            .iter()
            .filter(|f| f.sent >= fault_on && f.sent < fault_off)
            .collect();
        // when this load balancer stopped sending new flows to the worker: its last lost flow
        let stopped = during
            .iter()
            .filter(|f| f.answer.is_none())
            .map(|f| f.sent)
            .max()
            .unwrap_or(fault_on);
        let lost = failed(fault_on, fault_off);
        report.push(format!(
            "{address} (via {}): {} flows, {lost} lost during the fault, the last {} ms after it began; {} before, {} after",
            LBS[lb].name,
            mine.len(),
            ms(stopped - fault_on),
            failed(mine[0].sent, fault_on),
            failed(fault_off, Instant::now()),
        ));
        assert!(
            stopped - fault_on <= DETECT_BUDGET,
            "{address}: flows still lost {} ms into the fault\n{}",
            ms(stopped - fault_on),
            report.join("\n")
        );
        assert!(
            during
                .iter()
                .all(|f| f.sent < silent || f.answer.as_deref() != Some(WORKER)),
            "{address}: the dropped worker answered\n{}",
            report.join("\n")
        );
        assert_eq!(
            failed(mine[0].sent, fault_on) + failed(fault_off, Instant::now()),
            0,
            "{address}: flows lost outside the fault\n{}",
            report.join("\n")
        );
        assert!(
            mine.iter()
                .any(|f| f.sent >= recovered[lb] && f.answer.as_deref() == Some(WORKER)),
            "{address}: {WORKER} never served again\n{}",
            report.join("\n")
        );
    }
    eprintln!("{}", report.join("\n"));
    for (i, lb) in LBS.iter().enumerate() {
        assert!(
            detected[i] - fault_on <= DETECT_BUDGET,
            "{}: {}",
            lb.name,
            report.join("\n")
        );
        assert!(
            recovered[i] - fault_off <= RECOVER_BUDGET,
            "{}: {}",
            lb.name,
            report.join("\n")
        );
    }
}

/// `failover-test --backend wireguard`: the drill breaks the UDP NodePort, probes the VIP with
/// new flows and reports detection and recovery per load balancer against the budgets; a
/// drill of every backend breaks the UDP NodePort with the TCP ones.
#[test]
fn the_udp_drill_reports_and_passes() {
    let lab = Lab::up();
    applied(&lab);
    let run = Lbctl::on_lab()
        .args([
            "failover-test",
            "--worker",
            WORKER,
            "--backend",
            "wireguard",
        ])
        .args(["--hold", "5s", "--probe-rate", "10", "--json"])
        .timeout(120)
        .output();
    eprintln!("{}\n{}", run.stdout, run.stderr);
    let doc = run.json();
    let report = &doc["report"];
    assert_eq!(report["ports"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["udp_ports"],
        serde_json::json!([NODEPORT]),
        "{report}"
    );
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "one per load balancer: {report}");
    for r in results {
        assert_eq!(r["backend"], "wireguard");
        assert_eq!(r["protocol"], "udp");
        assert_eq!(r["server"], WORKER);
        assert_eq!(r["detect_budget_ms"], 3000, "{r}");
        assert_eq!(r["detected_in_budget"], true, "{r}");
        assert_eq!(r["recovered_in_budget"], true, "{r}");
    }
    let probe = &report["probe"];
    assert_eq!(
        probe["targets"],
        serde_json::json!([format!("{VIP}:{FRONTEND}/udp")])
    );
    assert!(
        probe["fault"]["attempts"].as_u64().unwrap() >= 45,
        "10 flows a second during a 5 s fault: {probe}"
    );
    assert_eq!(probe["noticed"]["failed"], 0, "{probe}");
    for phase in ["before", "recovery", "after"] {
        assert_eq!(probe[phase]["failed"], 0, "{phase}: {probe}");
    }
    assert_eq!(report["rules_left"], serde_json::json!([]));
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(run.code, 0);

    // Every backend of the worker, TCP and UDP, from the lab's client.
    all_serving(&lab);
    let text = Lbctl::on_lab()
        .args(["failover-test", "--worker", WORKER, "--hold", "3s"])
        .args(["--probe-from", "client"])
        .timeout(120)
        .stdout_has("30306/tcp, 30379/tcp, 30432/tcp, 31820/udp")
        .stdout_has("wireguard/k8s-worker-2 (udp): out of nginx after")
        .stdout_has(format!("{VIP}:{FRONTEND}/udp"))
        .stdout_has("PASSED")
        .run()
        .stdout;
    eprintln!("{text}");
}

/// lbctl's UDP health watcher keeps nginx right through what happens to a load balancer:
/// an apply that reloads HAProxy (whose servers all start UP again) and nginx, an nginx
/// reload by hand, and a restart of the whole host (lab `up` repairs it, as a reboot would).
#[test]
fn the_watcher_survives_apply_reload_and_restart() {
    let lab = Lab::up();
    applied(&lab);
    let pids: Vec<u32> = LBS
        .iter()
        .map(|lb| lab.daemon_pid(lb.name, "/run/lbctl-udp-health.pid"))
        .collect();
    udp_rule(&lab, "-I");
    when_each(DETECT_BUDGET, "worker-2 marked down in nginx", marked);

    // An apply that changes HAProxy's and nginx's files while the worker is down: HAProxy
    // reloads with every server UP until its first check, nginx is synced. worker-2 must stay
    // out of nginx throughout.
    let vars = support::scratch("udp-watcher-apply").join("weights.yml");
    let lab_vars =
        std::fs::read_to_string(support::repo_root().join("inventory/lab/group_vars/all.yml"))
            .unwrap();
    let udp = &lab_vars[lab_vars.find("haproxy_udp_backends:").unwrap()..];
    let weighted = udp.replacen(
        "        port: 31820\n",
        "        port: 31820\n        weight: 2\n",
        1,
    );
    assert_ne!(weighted, udp);
    std::fs::write(&vars, &weighted).unwrap();
    let extra = format!("@{}", vars.display());
    let watching = Arc::new(AtomicBool::new(true));
    let unmarked = {
        let watching = Arc::clone(&watching);
        thread::spawn(move || {
            let mut seen = Vec::new();
            while watching.load(Ordering::Relaxed) {
                for lb in LBS {
                    if !marked(lb.name) && !seen.contains(&lb.name) {
                        seen.push(lb.name);
                    }
                }
                sleep(Duration::from_millis(20));
            }
            seen
        })
    };
    Lbctl::on_lab()
        .args(["-e", &extra, "apply", "--yes"])
        .timeout(300)
        .stdout_has("/etc/haproxy/haproxy.cfg")
        .stdout_has("/etc/lbctl/nginx-stream.conf")
        .run();
    sleep(Duration::from_secs(3));
    watching.store(false, Ordering::Relaxed);
    assert_eq!(
        unmarked.join().unwrap(),
        Vec::<&str>::new(),
        "worker-2 was back in nginx during the apply"
    );
    for (lb, pid) in LBS.iter().zip(&pids) {
        let live = std::fs::read_to_string(live_file(lb.name)).unwrap();
        assert!(
            live.contains("server 10.77.77.21:31820 weight=2"),
            "{}: the apply's change is live\n{live}",
            lb.name
        );
        assert!(marked(lb.name), "{}\n{live}", lb.name);
        assert_eq!(
            lab.daemon_pid(lb.name, "/run/lbctl-udp-health.pid"),
            *pid,
            "{}: the watcher's script did not change, so neither did the watcher",
            lb.name
        );
    }

    // nginx reloaded by hand: it reads the watcher's file, worker-2 still out.
    for lb in LBS {
        let out = lab.exec(lb.name, &["nginx", "-s", "reload"]);
        assert!(
            out.status.success(),
            "{}",
            describe("nginx -s reload", &out)
        );
    }
    sleep(Duration::from_millis(500));
    let probe = FlowProbe::start(
        LBS.iter().map(|lb| lb.ip.to_string()).collect(),
        Duration::from_secs(10),
    );
    sleep(Duration::from_secs(2));
    let flows = probe.stop();
    assert!(flows.len() >= 45, "{flows:?}");
    assert!(
        flows
            .iter()
            .all(|f| f.answer.as_deref().is_some_and(|a| a != WORKER)),
        "after nginx's reload every flow is answered, none by {WORKER}: {flows:?}"
    );

    // lb2 restarts whole (its init killed: every process of the host dies, /run is lost,
    // /etc stays); lab `up` brings it back as a boot would. nginx starts with the watcher's
    // file, the watcher starts again, and worker-2 stays out.
    let init = std::fs::read_to_string(format!("{STATE_DIR}/hosts/lb2/pids/init.pid")).unwrap();
    let out = support::lab::run(10, "kill", &["-KILL", init.trim()]);
    assert!(out.status.success(), "{}", describe("kill init", &out));
    sleep(Duration::from_secs(1));
    let took = lab.bring_up();
    eprintln!("lab up repaired lb2 in {took:?}");
    let pid = lab.daemon_pid("lb2", "/run/lbctl-udp-health.pid");
    eprintln!("lb2's watcher: pid {} before, {pid} after", pids[1]);
    assert!(
        marked("lb2"),
        "worker-2 back in lb2's nginx after the restart"
    );
    wait_for(
        Duration::from_secs(10),
        "lb2's HAProxy to see worker-2 DOWN",
        || {
            let out = lab.exec(
            "lb2",
            &["sh", "-c", "echo 'show stat wireguard 4 -1' | socat - UNIX-CONNECT:/run/haproxy/admin.sock"],
        );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with(&format!("wireguard,{WORKER},")) && l.contains(",DOWN,"))
                .then_some(())
        },
    );
    assert!(marked("lb2"));

    // And it still follows HAProxy: the rule out, worker-2 back everywhere.
    let off = Instant::now();
    udp_rule(&lab, "-D");
    let back = when_each(RECOVER_BUDGET * 2, "worker-2 back in nginx", |lb| {
        !marked(lb)
    });
    for (lb, at) in LBS.iter().zip(back) {
        assert!(at - off <= RECOVER_BUDGET, "{}: {:?}", lb.name, at - off);
    }
}

/// nginx SIGKILLed (master and workers) on the VIP holder: every UDP service through the VIP
/// dies with it while HAProxy, which keepalived tracks for the VIP, still runs. The lab's
/// script check also waits on nginx's master (`chk_nginx`, weighted as the servers check):
/// the holder drops below the others and the next one takes the VIP, and UDP through the VIP
/// answers again. `status` names nginx (exit 1); an apply that would reload nginx the way that
/// needs it running (systemd's) is refused before any host changes. nginx started again:
/// the holder takes the VIP back, and `status` exits 0.
#[test]
fn a_dead_nginx_on_the_holder_moves_the_vip_and_status_names_it() {
    let lab = Lab::up();
    applied(&lab);
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    let answered = |limit: Duration, what: &str| {
        wait_for(limit, what, || {
            let out = lab.udp_reply(CLIENT_NS, VIP, FRONTEND, "ping\n");
            (out.status.success() && !out.stdout.is_empty()).then_some(())
        })
    };
    answered(
        Duration::from_secs(10),
        "UDP through the VIP before the kill",
    );
    let pid = lab.daemon_pid(holder.name, "/run/nginx.pid");
    let killed_at = Instant::now();
    lab.kill_master(holder.name, "/run/nginx.pid");
    let new_holder = wait_for(
        Duration::from_secs(10),
        "the VIP off nginx's dead host",
        || match lab.vip_holders(&LBS).as_slice() {
            [one] if one.name != holder.name => Some(*one),
            _ => None,
        },
    );
    eprintln!(
        "VIP moved from {} to {} {} ms after nginx's kill",
        holder.name,
        new_holder.name,
        killed_at.elapsed().as_millis()
    );
    answered(
        Duration::from_secs(10),
        "UDP through the VIP after the move",
    );

    let problem = format!(
        "{}: nginx is not running (pid {pid} in /run/nginx.pid is gone)",
        holder.name
    );
    let run = Lbctl::on_lab()
        .arg("status")
        .timeout(60)
        .exit(1)
        .stdout_has("nginx NOT RUNNING")
        .stderr_has(format!("error: {problem}\n"))
        .run();
    assert_eq!(run.stderr.matches("error: ").count(), 1, "{}", run.stderr);

    // systemd's reload needs nginx running: refused in the check, before any host changes
    let files = |lb: &str| {
        ["etc/nginx/lbctl-stream.conf", "etc/lbctl/nginx-stream.conf"].map(|f| {
            std::fs::read_to_string(PathBuf::from(STATE_DIR).join(format!("hosts/{lb}/{f}")))
                .unwrap()
        })
    };
    let before: Vec<_> = LBS.iter().map(|lb| files(lb.name)).collect();
    Lbctl::on_lab()
        .args([
            "-e",
            "nginx_reload_method=systemd nginx_resolver=10.77.77.53",
            "apply",
            "--yes",
        ])
        .timeout(120)
        .exit(1)
        .stderr_has(format!(
            "error: {}: preflight failed: `kill -0 $(cat /run/nginx.pid)`: nginx is not running: pid {pid} in /run/nginx.pid is gone",
            holder.name
        ))
        .stderr_has("(e.g. `systemctl start nginx`)")
        .stdout_has("Apply: 0 changed, 0 unchanged, 1 failed.")
        .run();
    let after: Vec<_> = LBS.iter().map(|lb| files(lb.name)).collect();
    assert!(before == after, "a host's nginx files changed");

    // started again: the holder takes the VIP back once its check has passed twice
    lab.bring_up();
    lab.wait_vip_held_by(&LBS, holder, Duration::from_secs(15));
    answered(
        Duration::from_secs(10),
        "UDP through the VIP once nginx is back",
    );
    wait_for(Duration::from_secs(20), "status exit 0", || {
        let run = Lbctl::on_lab().arg("status").timeout(60).output();
        (run.code == 0).then_some(())
    });
}
