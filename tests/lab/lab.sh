#!/usr/bin/env bash
# lbctl lab: real hosts on one Linux machine, made of network namespaces.
#
#   tests/lab/lab.sh up       create (or repair) the lab; installs missing Debian packages
#   tests/lab/lab.sh down     remove everything the lab created, and nothing else
#   tests/lab/lab.sh status   what is up; exit 0 only when every host and daemon is up
#   tests/lab/lab.sh exec HOST CMD [ARG...]
#                             run CMD inside HOST's view (its network, mounts, hostname, pids)
#
# Topology: bridge lbctl-lab0 (10.77.77.1/24 on the host side), one namespace per host,
# each with a veth end named eth0:
#   lb1..lbN      lab-lb1..    10.77.77.11..20, then .31..50   sshd haproxy keepalived nginx
#   k8s-worker-N  lab-w1..3    10.77.77.21..23                 sshd + fake NodePorts
#   client        lab-client   10.77.77.5                      sshd only; traffic comes from here
# LAB_LBS=N (1..30; default: the size already up, else 3) sets the number of load balancers. Load balancers 11..30
# skip .21..30, where the workers live. The VIP is 10.77.77.100/24.
#
# Every host runs in its own mount, UTS and PID namespaces (with its own /proc), under a small
# init (pid 1 of the host) that starts its sshd and reaps orphans: its /etc/haproxy,
# /etc/keepalived, /etc/nginx, /var/lib/haproxy, /var/lib/lbctl, /var/log, /run and /tmp are
# its own, pid files, kill, ps and pgrep see only its processes, and SSH sessions land in that
# view. State, keys and per-host logs live in /var/lib/lbctl-lab. The lab finds a host by its init's pid (recorded as
# the machine sees it, checked against the network namespace), never by a process name. up and
# down take an exclusive flock on /run/lbctl-lab.lock, status a shared one.
# shellcheck disable=SC2015,SC2016  # "a && b || true" is meant; single quotes are for bash -c
set -euo pipefail

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly LAB_SRC
readonly STATE=/var/lib/lbctl-lab
readonly LOCK=/run/lbctl-lab.lock
readonly BRIDGE=lbctl-lab0
readonly NET=10.77.77
readonly HOST_IP=$NET.1
readonly VIP=$NET.100
readonly MAX_LBS=30
readonly PACKAGES=(haproxy keepalived nginx libnginx-mod-stream openssh-server openssh-client
    iptables iproute2 socat openssl python3 procps util-linux)
readonly WORKER_TCP_PORTS=(30306 30432 30379 30080 30443 10256)
readonly WORKER_UDP_PORT=31820

usage() {
    cat >&2 <<EOF
usage: $0 up | down | status | exec HOST CMD [ARG...]
  up      create or repair the lab (LAB_LBS=N for N load balancers, 1..$MAX_LBS, default 3);
          for N != 3 it also writes the inventory $STATE/inventory-N
  down    remove the lab's namespaces, bridge, processes and state
  status  show hosts and daemons; exit 0 only when everything is up
  exec    run a command inside a lab host (lb1, k8s-worker-1, client, ...)
EOF
    exit 2
}

log() { printf 'lab: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

require_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it creates namespaces, a bridge and mounts)"
}

lock() { # lock -x|-s
    exec 9>"$LOCK"
    flock "$1" -w 120 9 || die "another lab.sh holds $LOCK for more than 120 s"
}

PHASES=
phase() { # phase NAME: note how long the step that just ended took
    local t
    t=$(now_ms)
    PHASES+=" $1 $((t - PHASE_AT)),"
    PHASE_AT=$t
}

now_ms() {
    local s=${EPOCHREALTIME/./}
    echo $((s / 1000))
}

# ---------------------------------------------------------------- host table
# HOSTS holds inventory names; the maps give each host's namespace, address, role, veth.
declare -a HOSTS=()
declare -A NS=() IP=() ROLE=() VETH=() PRIO=()
LBS=0

lb_ip() { # lb_ip INDEX
    if (($1 <= 10)); then echo "$NET.$((10 + $1))"; else echo "$NET.$((20 + $1))"; fi
}

build_hosts() { # build_hosts N
    local n=$1 i name step=10
    # priorities as lbctl's defaults: from 254 down, 10 apart (closer when many)
    ((n <= 1 || 253 / (n - 1) >= 10)) || step=$((253 / (n - 1)))
    LBS=$n
    for ((i = 1; i <= n; i++)); do
        name=lb$i
        HOSTS+=("$name")
        NS[$name]=lab-lb$i IP[$name]=$(lb_ip "$i") ROLE[$name]=lb VETH[$name]=lbctl-lb$i
        PRIO[$name]=$((254 - (i - 1) * step))
    done
    for i in 1 2 3; do
        name=k8s-worker-$i
        HOSTS+=("$name")
        NS[$name]=lab-w$i IP[$name]=$NET.2$i ROLE[$name]=worker VETH[$name]=lbctl-w$i
    done
    HOSTS+=(client)
    NS[client]=lab-client IP[client]=$NET.5 ROLE[client]=client VETH[client]=lbctl-client
}

lbs_requested() { # LAB_LBS, else the size of the lab already up, else 3
    local n=${LAB_LBS:-$(lbs_running)}
    n=${n:-3}
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= MAX_LBS)) ||
        die "LAB_LBS must be a number from 1 to $MAX_LBS (got '$n')"
    echo $((10#$n))
}

lbs_running() { # the size of the lab that is up, or nothing
    [ -f "$STATE/lbs" ] && cat "$STATE/lbs" || true
}

hdir() { echo "$STATE/hosts/$1"; }

services_of() { # the daemons a host runs besides sshd
    case ${ROLE[$1]} in
        # and lbctl's UDP health watcher once lbctl installed it, as systemd would start its unit
        lb) echo haproxy keepalived nginx "$([ -x "$(hdir "$1")/etc/lbctl/udp-health" ] && echo udp-health)" ;;
        worker) echo nodeport ;;
        client) ;;
    esac
}

# ---------------------------------------------------------------- process helpers
# Each host has its own PID namespace, so two kinds of pid meet here. A host's init is
# recorded as the machine sees it ($STATE/hosts/HOST/pids/init.pid) and counts as the lab's only
# while it lives in the host's network namespace, so a recycled pid is never mistaken for (or
# killed as) one of ours. Every other pid (sshd, the daemons, their pid files in the host's
# /run) is the host's own, as ps shows it inside the host, and is looked up in the host's
# /proc through its init.
in_ns() { # in_ns PID NAMESPACE: PID (as the machine sees it) is in the network namespace
    [ -n "$1" ] && [ -e "/run/netns/$2" ] && [ /proc/"$1"/ns/net -ef /run/netns/"$2" ]
}

running() { # running STAT_FILE: alive and not a zombie (an init may reap orphans late)
    local stat=
    read -r stat 2>/dev/null <"$1" || return 1
    stat=${stat##*) }
    [ "${stat:0:1}" != Z ]
}

read_pid() { # read_pid FILE: first line of a pid file, or nothing
    local pid=
    [ -r "$1" ] && read -r pid <"$1" 2>/dev/null || true
    [[ $pid =~ ^[0-9]+$ ]] && echo "$pid" || true
}

init_pid() { # the machine's pid of a host's init, whose namespaces are the host's view
    local pid
    pid=$(read_pid "$(hdir "$1")/pids/init.pid")
    in_ns "$pid" "${NS[$1]}" && echo "$pid" || true
}

host_running() { # host_running INIT_PID HOST_PID: the host's pid is alive in the host
    [ -n "$2" ] && running "/proc/$1/root/proc/$2/stat"
}

svc_pid() { # svc_pid HOST SERVICE: the live pid of a daemon as the host sees it, or nothing
    local h=$1 svc=$2 ip pid=
    ip=$(init_pid "$h")
    [ -n "$ip" ] || return 0
    case $svc in
        # daemons with their own pid file inside the host: trust it first, so a restart done
        # by lbctl (or by hand, over SSH) is still seen
        haproxy) pid=$(read_pid "/proc/$ip/root/run/haproxy.pid") ;;
        keepalived) pid=$(read_pid "/proc/$ip/root/run/keepalived.pid") ;;
        nginx) pid=$(read_pid "/proc/$ip/root/run/nginx.pid") ;;
        udp-health) pid=$(read_pid "/proc/$ip/root/run/lbctl-udp-health.pid") ;;
    esac
    host_running "$ip" "$pid" || pid=$(read_pid "$(hdir "$h")/pids/$svc.pid")
    host_running "$ip" "$pid" && echo "$pid" || true
}

listening() { # listening HOST tcp|udp PORT: is PORT bound in the host's network namespace?
    local file want=0A hex addr st ip
    ip=$(init_pid "$1")
    file=/proc/$ip/net/$2
    [ "$2" = udp ] && want=07
    printf -v hex '%04X' "$3"
    [ -n "$ip" ] && [ -r "$file" ] || return 1
    while read -r _ addr _ st _; do
        [[ $addr == *:"$hex" && $st == "$want" ]] && return 0
    done <"$file"
    return 1
}

svc_ready() { # svc_ready HOST SERVICE: running and serving
    local h=$1 pid ip port
    pid=$(svc_pid "$h" "$2")
    [ -n "$pid" ] || return 1
    case $2 in
        sshd) listening "$h" tcp 22 ;;
        haproxy)
            ip=$(init_pid "$h")
            [ -S "/proc/$ip/root/run/haproxy/master.sock" ]
            ;;
        keepalived | nginx | udp-health) return 0 ;;
        nodeport)
            for port in "${WORKER_TCP_PORTS[@]}"; do listening "$h" tcp "$port" || return 1; done
            listening "$h" udp "$WORKER_UDP_PORT"
            ;;
    esac
}

in_host() { # in_host HOST CMD...: run CMD in the host's view (network, mounts, hostname, pids)
    local h=$1 ip
    shift
    ip=$(init_pid "$h")
    [ -n "$ip" ] || die "$h is not up (no init in ${NS[$h]})"
    nsenter -t "$ip" -m -u -n -p -- "$@"
}

launch() { # launch HOST PIDFILE LOGFILE CMD...: start a daemon in the host's view
    local h=$1 pidfile=$2 logfile=$3 ip
    shift 3
    ip=$(init_pid "$h")
    # setsid -f: a new session, forked, so the daemon is the host init's child (as under an
    # init system) and outlives this script; 9>&-: it must not inherit the lab lock. The pid
    # file gets the daemon's pid as the host sees it.
    nsenter -t "$ip" -m -u -n -p -- setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" \
        </dev/null >>"$logfile" 2>&1 9>&-
}

wait_until() { # wait_until SECONDS DESCRIPTION CMD...: bounded poll
    local secs=$1 what=$2 deadline
    deadline=$(($(now_ms) + secs * 1000))
    shift 2
    until "$@"; do
        (($(now_ms) < deadline)) || {
            log "timed out after $secs s waiting for $what"
            return 1
        }
        sleep 0.05
    done
}

tail_log() { # show the end of a log to explain a failure
    [ -s "$1" ] || return 0
    log "last lines of $1:"
    tail -n 15 "$1" | sed 's/^/    /' >&2
}

# ---------------------------------------------------------------- packages
ensure_packages() {
    local missing=() p installed
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
    for p in "${PACKAGES[@]}"; do
        grep -qx "$p installed" <<<"$installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    log "installing missing packages: ${missing[*]}"
    # keep the packages' maintainer scripts from starting host-wide haproxy/nginx/sshd
    local policy=/usr/sbin/policy-rc.d made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"; } >&2 || rc=$?
    [ -z "$made_policy" ] || rm -f "$policy"
    ((rc == 0)) || die "apt-get install ${missing[*]} failed (exit $rc)"
}

# ---------------------------------------------------------------- config files
write_haproxy_cfg() { # a minimal valid bootstrap; lbctl replaces it
    cat >"$1" <<'EOF'
# lbctl lab bootstrap configuration; lbctl apply replaces this file.
global
    stats socket /run/haproxy/admin.sock mode 600 level admin
    stats timeout 30s
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend stats
    bind *:8404
    stats enable
    stats uri /stats
    stats refresh 10s
    http-request use-service prometheus-exporter if { path /metrics }
EOF
}

write_keepalived_conf() { # write_keepalived_conf HOST FILE
    local h=$1 state=BACKUP other peers=
    [ "$h" = lb1 ] && state=MASTER
    for other in "${HOSTS[@]}"; do
        [ "${ROLE[$other]}" = lb ] && [ "$other" != "$h" ] && peers+="        ${IP[$other]}"$'\n'
    done
    {
        cat <<EOF
# lbctl lab bootstrap configuration; lbctl apply replaces this file.
global_defs {
    router_id $h
}

vrrp_instance VI_1 {
    state $state
    interface eth0
    virtual_router_id 51
    priority ${PRIO[$h]}
    advert_int 1
EOF
        if [ -n "$peers" ]; then
            printf '    unicast_src_ip %s\n    unicast_peer {\n%s    }\n' "${IP[$h]}" "$peers"
        fi
        cat <<EOF
    authentication {
        auth_type PASS
        auth_pass lab-vrrp
    }
    virtual_ipaddress {
        $VIP/24
    }
}
EOF
    } >"$2"
}

write_nginx_conf() {
    cat >"$1" <<'EOF'
# lbctl lab: nginx carries UDP (and TCP) through the stream module.
user www-data;
worker_processes auto;
pid /run/nginx.pid;
# /var/log is the host's own (bind-mounted from /var/lib/lbctl-lab/hosts/HOST/log)
error_log /var/log/nginx/error.log;
include /etc/nginx/modules-enabled/*.conf;

events {
    worker_connections 1024;
}

# lbctl deploys /etc/nginx/lbctl-stream.conf with a stream { } block; the glob lets
# nginx start before it exists.
include /etc/nginx/lbctl-stream*.conf;
EOF
}

write_sshd_config() { # write_sshd_config HOST
    local d
    d=$(hdir "$1")
    cat >"$d/ssh/sshd_config" <<EOF
# lbctl lab sshd for $1: root by key only
ListenAddress 0.0.0.0
Port 22
HostKey $d/ssh/ssh_host_ed25519_key
PidFile none
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile $STATE/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes yes
UsePAM no
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
MaxStartups 100:30:200
MaxSessions 64
EOF
}

prepare_host() { # files of one host: its private /etc dirs, configs, host key
    local h=$1 d
    d=$(hdir "$h")
    mkdir -p "$d"/{etc/lbctl,var-lib-haproxy,var-lib-lbctl,log/nginx,pids,ssh}
    chmod 755 "$d" "$d/ssh"
    # the login records sshd keeps in the host's own /var/log
    touch "$d/log/lastlog" "$d/log/wtmp" "$d/log/btmp"
    # seed private copies of Debian's directories once; later ups keep what lbctl deployed
    if [ ! -e "$d/etc/.seeded" ]; then
        rm -rf "$d/etc/haproxy" "$d/etc/nginx" "$d/etc/keepalived"
        cp -a /etc/haproxy /etc/nginx "$d/etc/"
        mkdir -p "$d/etc/keepalived"
        cp -a /var/lib/haproxy/. "$d/var-lib-haproxy/"
        if [ "${ROLE[$h]}" = lb ]; then
            write_haproxy_cfg "$d/etc/haproxy/haproxy.cfg"
            write_keepalived_conf "$h" "$d/etc/keepalived/keepalived.conf"
            write_nginx_conf "$d/etc/nginx/nginx.conf"
        fi
        touch "$d/etc/.seeded"
    fi
    [ -f "$d/ssh/ssh_host_ed25519_key" ] ||
        ssh-keygen -q -t ed25519 -N '' -C "root@$h" -f "$d/ssh/ssh_host_ed25519_key"
    write_sshd_config "$h"
    # sshd refuses root logins when root's password field is locked ("!") and PAM is off:
    # give the host a private /etc/shadow with the lock replaced by "*" (no password either)
    if grep -q '^root:!' /etc/shadow; then
        sed 's/^root:![^:]*:/root:*:/' /etc/shadow >"$d/shadow"
        chmod 640 "$d/shadow"
    fi
    if [ "${ROLE[$h]}" = worker ] && [ ! -f "$d/tls.crt" ]; then
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$d/tls.key" -subj "/CN=$h" -out "$d/tls.csr" 2>/dev/null
        # a serial of its own: -CAcreateserial's shared ca.srl is rewritten in place, and the
        # workers prepared in parallel then sometimes read it empty and fail
        openssl x509 -req -in "$d/tls.csr" -CA "$STATE/tls/ca.crt" -CAkey "$STATE/tls/ca.key" \
            -set_serial "0x$(openssl rand -hex 16)" -days 3650 -out "$d/tls.crt" \
            -extfile <(printf 'subjectAltName=IP:%s,DNS:%s\n' "${IP[$h]}" "$h") 2>/dev/null
        rm -f "$d/tls.csr"
    fi
}

# Runs inside the host's new network, mount, UTS and PID namespaces (see start_host) as the
# host's init, pid 1: records its pid as the machine sees it, mounts the host's own /proc and
# files, starts sshd (everything later entered through sshd or nsenter shares this view) and
# reaps orphaned daemons until sshd exits; then the kernel ends every process of the host.
host_init() { # host_init HOST IP
    local h=$1 ip=$2 d stat sshd
    d=$(hdir "$h")
    # /proc is still the machine's here: its "self" is this process as the machine sees it
    read -r -a stat </proc/self/stat
    mount -t proc -o nosuid,nodev,noexec proc /proc
    echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6 || true
    ip link set lo up
    ip addr replace "$ip/24" dev eth0
    ip link set eth0 up
    mount --bind "$d/etc/haproxy" /etc/haproxy
    mount --bind "$d/etc/keepalived" /etc/keepalived
    mount --bind "$d/etc/nginx" /etc/nginx
    # lbctl's UDP health watcher's directory: the mount point is created on the machine right
    # before the mount when missing (another lab's teardown may have removed it since), marked
    # so that teardown removes it again
    if [ ! -d /etc/lbctl ] && mkdir -m 755 /etc/lbctl 2>/dev/null; then
        echo /etc/lbctl >>"$STATE/made-dirs"
    fi
    mount --bind "$d/etc/lbctl" /etc/lbctl
    mount --bind "$d/var-lib-haproxy" /var/lib/haproxy
    # lbctl's own state on a load balancer (its admin record); the mount point is created on
    # the machine, marked so that teardown removes it again
    if [ ! -d /var/lib/lbctl ]; then
        mkdir /var/lib/lbctl && touch "$STATE/made-var-lib-lbctl"
    fi
    mount --bind "$d/var-lib-lbctl" /var/lib/lbctl
    mount --bind "$d/log" /var/log
    [ ! -f "$d/shadow" ] || mount --bind "$d/shadow" /etc/shadow
    mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
    # Each machine has its own root home: without this, every SSH command ran the outer
    # machine's ~/.bashrc (here `pyenv init`, 0.14 s of CPU per command).
    mount -t tmpfs -o mode=700,nosuid,nodev tmpfs /root
    mkdir -p /run/sshd /run/haproxy /run/lock
    chmod 1777 /run/lock
    hostname "$h"
    /usr/sbin/sshd -D -e -f "$d/ssh/sshd_config" &
    sshd=$!
    echo "$sshd" >"$d/pids/sshd.pid"
    echo "${stat[0]}" >"$d/pids/init.pid"
    trap 'kill -TERM "$sshd" 2>/dev/null' TERM INT HUP
    # bash reaps every child it is handed, known or not, while it waits
    while kill -0 "$sshd" 2>/dev/null; do wait "$sshd" || true; done
}

start_host() { # start a host's init + sshd in namespaces of its own
    local h=$1 d
    d=$(hdir "$h")
    # leftovers of a dead init (daemons in a stale view) go before the host starts afresh
    kill_ns_procs "${NS[$h]}"
    rm -f "$d/pids/"*.pid
    # --kill-child: should unshare itself be killed, the host's init (and so the host) goes too
    setsid ip netns exec "${NS[$h]}" unshare --mount --uts --pid --fork --kill-child \
        --propagation private -- bash "$STATE/bin/lab.sh" __init "$h" "${IP[$h]}" \
        </dev/null >>"$d/log/sshd.log" 2>&1 9>&- &
}

check_config() { # check_config HOST SERVICE: the real program's own check, in the host
    local h=$1 out
    case $2 in
        haproxy) out=$(in_host "$h" haproxy -c -q -f /etc/haproxy/haproxy.cfg 2>&1) ;;
        keepalived) out=$(in_host "$h" keepalived -t -f /etc/keepalived/keepalived.conf 2>&1) ;;
        nginx) out=$(in_host "$h" nginx -t -q -c /etc/nginx/nginx.conf 2>&1) ;;
        *) return 0 ;;
    esac || {
        log "$h: $2 configuration check failed:"
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        return 1
    }
}

start_service() { # start_service HOST SERVICE
    local h=$1 svc=$2 d
    d=$(hdir "$h")
    check_config "$h" "$svc" || return 1
    case $svc in
        haproxy)
            # master-worker, master in the foreground of its own session: the pid stays the
            # same across reloads (echo reload | socat /run/haproxy/master.sock -)
            launch "$h" "$d/pids/haproxy.pid" "$d/log/haproxy.log" \
                haproxy -W -S /run/haproxy/master.sock,level,admin \
                -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid
            ;;
        keepalived)
            # -n keeps it in the foreground so -l (log to console) lands in its log file
            launch "$h" "$d/pids/keepalived.pid" "$d/log/keepalived.log" \
                keepalived -n -l -D -f /etc/keepalived/keepalived.conf -p /run/keepalived.pid \
                -r /run/keepalived_vrrp.pid -c /run/keepalived_checkers.pid
            ;;
        nginx)
            in_host "$h" nginx -c /etc/nginx/nginx.conf </dev/null >>"$d/log/nginx-start.log" 2>&1 9>&- || {
                tail_log "$d/log/nginx-start.log"
                tail_log "$d/log/nginx/error.log"
                return 1
            }
            ;;
        udp-health)
            launch "$h" "$d/pids/udp-health.pid" "$d/log/lbctl-udp-health.log" \
                /etc/lbctl/udp-health run
            ;;
        nodeport)
            launch "$h" "$d/pids/nodeport.pid" "$d/log/nodeport.log" \
                /usr/bin/python3 "$STATE/bin/nodeport.py" "$h" "${IP[$h]}" "$d/tls.crt" "$d/tls.key"
            ;;
    esac
}

# ---------------------------------------------------------------- network
create_network() { # bridge, namespaces and veths that do not exist yet
    local h batch=() new=()
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        echo "$BRIDGE" >>"$STATE/created"
    fi
    # lab traffic stays on the bridge: no IPv6 chatter, and nothing is forwarded off it
    echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6"
    echo 0 >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
    ip addr replace "$HOST_IP/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for h in "${HOSTS[@]}"; do
        if [ ! -e "/run/netns/${NS[$h]}" ]; then
            batch+=("netns add ${NS[$h]}")
            echo "${NS[$h]}" >>"$STATE/created"
        fi
        if ! [ -e "/sys/class/net/${VETH[$h]}" ]; then
            batch+=("link add ${VETH[$h]} type veth peer name eth0 netns ${NS[$h]}")
            new+=("${VETH[$h]}")
        fi
    done
    if ((${#batch[@]})); then
        printf '%s\n' "${batch[@]}" | ip -batch -
    fi
    batch=()
    for h in "${new[@]}"; do
        echo 1 >"/proc/sys/net/ipv6/conf/$h/disable_ipv6"
    done
    for h in "${HOSTS[@]}"; do
        batch+=("link set ${VETH[$h]} master $BRIDGE up")
    done
    printf '%s\n' "${batch[@]}" | ip -batch -
}

# ---------------------------------------------------------------- teardown
kill_ns_procs() { # kill_ns_procs NAMESPACE...: TERM every process in them, KILL stragglers
    local ns pids=() pid deadline
    for ns in "$@"; do
        [ -e "/run/netns/$ns" ] || continue
        # shellcheck disable=SC2207
        pids+=($(ip netns pids "$ns" 2>/dev/null || true))
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    deadline=$(($(now_ms) + 1500))
    while (($(now_ms) < deadline)); do
        local alive=()
        for pid in "${pids[@]}"; do
            running "/proc/$pid/stat" && alive+=("$pid")
        done
        ((${#alive[@]})) || return 0
        pids=("${alive[@]}")
        sleep 0.05
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

teardown() { # remove every namespace, veth, bridge and process of the lab, and its state
    local h namespaces=() recorded=() pid n
    n=$(lbs_running)
    # without state (a crash before it was written) fall back to the largest lab's names:
    # they are the lab's own by contract
    [ -n "$n" ] || n=$MAX_LBS
    HOSTS=()
    build_hosts "$n"
    for h in "${HOSTS[@]}"; do
        namespaces+=("${NS[$h]}")
        # the host's init, killed only while still in the lab's namespace: its end ends every
        # process of the host (its PID namespace)
        pid=$(read_pid "$(hdir "$h")/pids/init.pid")
        in_ns "$pid" "${NS[$h]}" && recorded+=("$pid")
    done
    ((${#recorded[@]} == 0)) || kill -TERM "${recorded[@]}" 2>/dev/null || true
    kill_ns_procs "${namespaces[@]}"
    for h in "${HOSTS[@]}"; do
        [ ! -e "/sys/class/net/${VETH[$h]}" ] || ip link del "${VETH[$h]}" 2>/dev/null || true
        [ ! -e "/run/netns/${NS[$h]}" ] || ip netns del "${NS[$h]}"
    done
    [ ! -e "/sys/class/net/$BRIDGE" ] || ip link del "$BRIDGE"
    # SSH master connections kept open for reuse (lbctl's --ssh-persist) that log in with
    # the lab's key: their hosts are gone. Only those in this mount namespace: a lab run in a
    # private one (bench/run's BENCH_PRIVATE_LAB) must not close the shared lab's, nor the
    # shared lab a private one's, though both use the same key path.
    for pid in $(pgrep -f -- "^ssh .*-i $STATE/ssh/id_ed25519 " || true); do
        [ "/proc/$pid/ns/mnt" -ef /proc/self/ns/mnt ] && kill -TERM "$pid" 2>/dev/null || true
    done
    [ ! -e "$STATE/made-var-lib-lbctl" ] || rmdir /var/lib/lbctl 2>/dev/null || true
    # /etc/lbctl, when this lab made it, unless a host of another lab (a private one) still has
    # its own mounted there: removing a mount point would unmount it from under that host
    if [ -f "$STATE/made-dirs" ]; then
        while read -r f; do
            grep -qs -- " $f " /proc/[0-9]*/mountinfo || rmdir "$f" 2>/dev/null || true
        done <"$STATE/made-dirs"
    fi
    rm -rf "$STATE"
}

# ---------------------------------------------------------------- inventory
write_inventory() { # write_inventory DIR: an inventory of the lab's size, like inventory/lab
    local dir=$1 h
    rm -rf "$dir"
    mkdir -p "$dir/group_vars" "$dir/host_vars"
    cp "$LAB_SRC/../../inventory/lab/group_vars/"*.yml "$dir/group_vars/"
    {
        echo "# lbctl lab inventory for $LBS load balancers (written by tests/lab/lab.sh up)"
        echo "[haproxy_servers]"
        for h in "${HOSTS[@]}"; do
            [ "${ROLE[$h]}" = lb ] && echo "$h ansible_host=${IP[$h]}"
        done
        echo
        echo "[workers]"
        for h in "${HOSTS[@]}"; do
            [ "${ROLE[$h]}" = worker ] && echo "$h ansible_host=${IP[$h]}"
        done
        echo
        echo "[clients]"
        echo "client ansible_host=${IP[client]}"
        echo
        echo "[all:vars]"
        echo "ansible_user=root"
        echo "ansible_ssh_private_key_file=$STATE/ssh/id_ed25519"
        echo "ansible_ssh_common_args='-o UserKnownHostsFile=$STATE/ssh/known_hosts'"
        echo "ansible_python_interpreter=/usr/bin/python3"
    } >"$dir/hosts.ini"
    for h in "${HOSTS[@]}"; do
        [ "${ROLE[$h]}" = lb ] && echo "keepalived_priority: ${PRIO[$h]}" >"$dir/host_vars/$h.yml"
    done
    return 0
}

inventory_path() {
    if [ "$LBS" -eq 3 ]; then
        (cd "$LAB_SRC/../../inventory/lab" && pwd)
    else
        echo "$STATE/inventory-$LBS"
    fi
}

# ---------------------------------------------------------------- VIP
vip_holders() { # the load balancers holding the VIP, space separated
    local h addrs out=()
    for h in "${HOSTS[@]}"; do
        [ "${ROLE[$h]}" = lb ] && [ -e "/run/netns/${NS[$h]}" ] || continue
        addrs=$(ip -n "${NS[$h]}" -o -4 addr show dev eth0 2>/dev/null || true)
        [[ $addrs != *" $VIP/"* ]] || out+=("$h")
    done
    echo "${out[*]}"
}

lb1_holds_vip() {
    [ "$(vip_holders)" = lb1 ]
}

one_vip_holder() {
    local holders
    holders=$(vip_holders)
    [ -n "$holders" ] && [ "${holders// /}" = "$holders" ]
}

# ---------------------------------------------------------------- commands
UP_DONE=0
FRESH=0

up_failed() {
    local rc=$?
    ((UP_DONE == 0)) || return 0
    if ((FRESH)); then
        log "up failed (exit $rc); removing the partial lab"
        teardown || true
    else
        log "up failed (exit $rc); the lab that was already up is left as it is (lab.sh down removes it)"
    fi
}

cmd_up() {
    local start n running h svc pids=() pid fail=0 started_keepalived=0 type key
    start=$(now_ms)
    PHASE_AT=$start
    require_root
    n=$(lbs_requested)
    ensure_packages
    lock -x
    phase packages+lock
    running=$(lbs_running)
    if [ -n "$running" ] && [ "$running" != "$n" ]; then
        die "the lab is up with $running load balancers; run 'lab.sh down' before LAB_LBS=$n"
    fi
    build_hosts "$n"
    [ -n "$running" ] && [ -e "/sys/class/net/$BRIDGE" ] || FRESH=1
    trap up_failed EXIT

    mkdir -p "$STATE"/{hosts,ssh,tls,bin}
    chmod 755 "$STATE" "$STATE/ssh"
    echo "$n" >"$STATE/lbs"
    install -m 755 "$LAB_SRC/lab.sh" "$LAB_SRC/nodeport.py" "$STATE/bin/"
    if [ ! -f "$STATE/ssh/id_ed25519" ]; then
        ssh-keygen -q -t ed25519 -N '' -C lbctl-lab -f "$STATE/ssh/id_ed25519"
    fi
    install -m 600 "$STATE/ssh/id_ed25519.pub" "$STATE/ssh/authorized_keys"
    if [ ! -f "$STATE/tls/ca.crt" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
            -subj "/CN=lbctl lab CA" -keyout "$STATE/tls/ca.key" -out "$STATE/tls/ca.crt" 2>/dev/null
    fi

    phase keys
    create_network
    phase network
    for h in "${HOSTS[@]}"; do
        prepare_host "$h" &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || fail=1; done
    ((fail == 0)) || die "preparing the hosts' files failed (see above)"
    phase files

    for h in "${HOSTS[@]}"; do
        [ -n "$(init_pid "$h")" ] || start_host "$h"
    done
    for h in "${HOSTS[@]}"; do
        wait_until 15 "sshd on $h" svc_ready "$h" sshd || {
            tail_log "$(hdir "$h")/log/sshd.log"
            die "sshd did not come up on $h"
        }
    done
    phase sshd

    pids=()
    for h in "${HOSTS[@]}"; do
        for svc in $(services_of "$h"); do
            [ -z "$(svc_pid "$h" "$svc")" ] || continue
            [ "$svc" != keepalived ] || started_keepalived=1
            start_service "$h" "$svc" &
            pids+=($!)
        done
    done
    for pid in "${pids[@]}"; do wait "$pid" || fail=1; done
    ((fail == 0)) || die "starting daemons failed (see above)"
    for h in "${HOSTS[@]}"; do
        for svc in $(services_of "$h"); do
            wait_until 15 "$svc on $h" svc_ready "$h" "$svc" || {
                tail_log "$(hdir "$h")/log/$svc.log"
                die "$svc did not come up on $h"
            }
            pid=$(svc_pid "$h" "$svc")
            echo "$pid" >"$(hdir "$h")/pids/$svc.pid"
        done
    done
    phase daemons

    {
        for h in "${HOSTS[@]}"; do
            read -r type key _ <"$(hdir "$h")/ssh/ssh_host_ed25519_key.pub"
            echo "${IP[$h]} $type $key"
        done
    } >"$STATE/ssh/known_hosts"
    [ "$n" -eq 3 ] || write_inventory "$STATE/inventory-$n"

    if ((started_keepalived)); then
        # A fresh lab runs the bootstrap configuration, where lb1 has the highest priority
        # and preempts: a backup that took the VIP while lb1's keepalived was still starting
        # loses it again within an advert or two, so wait for where it settles.
        if ((FRESH)) && ! wait_until 10 "lb1 alone to hold the VIP" lb1_holds_vip; then
            die "keepalived did not settle with the VIP on lb1 (holders: $(vip_holders))"
        fi
        if ! wait_until 10 "exactly one VIP holder" one_vip_holder; then
            ((FRESH == 0)) || die "keepalived elected no single VIP holder (holders: $(vip_holders))"
            log "warning: VIP $VIP holders: '$(vip_holders)' (keepalived runs lbctl's config?)"
        fi
    fi
    phase vip
    UP_DONE=1
    log "up: $n load balancers, 3 workers, client in $(($(now_ms) - start)) ms" \
        "(ms:${PHASES%,}); VIP on $(vip_holders); inventory $(inventory_path)"
}

cmd_down() {
    local start
    start=$(now_ms)
    require_root
    lock -x
    teardown
    log "down in $(($(now_ms) - start)) ms"
}

cmd_status() {
    local n h svc pid cols ok=0 holders
    require_root
    lock -s
    n=$(lbs_running)
    if [ -z "$n" ]; then
        echo "lab: down (no $STATE/lbs)"
        [ ! -e "/sys/class/net/$BRIDGE" ] || echo "warning: bridge $BRIDGE exists without lab state"
        return 1
    fi
    build_hosts "$n"
    if [ -e "/sys/class/net/$BRIDGE" ]; then
        echo "bridge $BRIDGE: up ($HOST_IP/24)"
    else
        echo "bridge $BRIDGE: MISSING"
        ok=1
    fi
    printf '%-13s %-11s %-12s %-8s %s\n' HOST NAMESPACE ADDRESS NETNS "INIT (machine pid), DAEMONS (host pids)"
    for h in "${HOSTS[@]}"; do
        pid=$(init_pid "$h")
        cols=" init=${pid:-DOWN}"
        [ -n "$pid" ] || ok=1
        for svc in sshd $(services_of "$h"); do
            if svc_ready "$h" "$svc"; then
                pid=$(svc_pid "$h" "$svc")
                cols+=" $svc=up($pid)"
            else
                cols+=" $svc=DOWN"
                ok=1
            fi
        done
        if [ -e "/run/netns/${NS[$h]}" ]; then
            printf '%-13s %-11s %-12s %-8s%s\n' "$h" "${NS[$h]}" "${IP[$h]}" up "$cols"
        else
            printf '%-13s %-11s %-12s %-8s%s\n' "$h" "${NS[$h]}" "${IP[$h]}" MISSING "$cols"
            ok=1
        fi
    done
    holders=$(vip_holders)
    echo "VIP $VIP/24 held by: ${holders:-nobody}"
    echo "inventory: $(inventory_path)"
    echo "ssh: ssh -i $STATE/ssh/id_ed25519 -o UserKnownHostsFile=$STATE/ssh/known_hosts root@ADDRESS"
    if ((ok == 0)); then echo "lab: up"; else echo "lab: NOT fully up"; fi
    return "$ok"
}

cmd_exec() {
    local h=$1 n
    shift
    (($#)) || usage
    n=$(lbs_running)
    [ -n "$n" ] || die "the lab is down"
    build_hosts "$n"
    [ -n "${NS[$h]:-}" ] || die "no lab host '$h' (hosts: ${HOSTS[*]})"
    in_host "$h" "$@"
}

main() {
    # Descriptors inherited from the caller (a `flock FILE lab.sh up` lock, say) would pass on
    # to every daemon started here and outlive this script, holding the caller's lock for as
    # long as the lab runs. Close the ones a shell caller can open (bash's own are >= 10).
    exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
    (($#)) || usage
    case $1 in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        exec)
            (($# >= 3)) || usage
            shift
            require_root
            cmd_exec "$@"
            ;;
        __init) host_init "$2" "$3" ;;
        *) usage ;;
    esac
}

main "$@"
