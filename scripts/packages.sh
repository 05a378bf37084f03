# shellcheck shell=bash
# Sourced by scripts/test and scripts/demo: installs the Debian packages lbctl's tests, lab and
# demo use, running `apt-get update` first whenever something is missing.
LBCTL_PACKAGES=(
  haproxy keepalived nginx libnginx-mod-stream
  openssh-server openssh-client iptables iproute2 socat procps util-linux
  coreutils python3 python3-venv openssl time curl sudo passwd shellcheck man-db chromium python3-yaml systemd
)

lbctl_install_packages() {
  local missing=() p
  for p in "${LBCTL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  echo "installing: ${missing[*]}"
  # Packages must not start host-wide daemons: the lab runs its own, per namespace.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if ((created)); then rm -f "$policy"; fi
}

lbctl_require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "error: run as root: the lab and the real-program checks use network namespaces" >&2
    exit 1
  fi
}
