#!/usr/bin/env bash
# Installs the Debian packages vlcp and its test lab need. Idempotent: installs only what is
# missing. The packaged daemons are not started (policy-rc.d 101 while installing): vlcp and
# its tests start private instances of them, on private ports and directories.
set -euo pipefail
PACKAGES=(
  openvswitch-switch openvswitch-common openvswitch-vtep python3-openvswitch
  ovn-central ovn-host ovn-common
  zookeeper default-jre-headless etcd-server etcd-client redis-server
  iproute2 ethtool iputils-ping tcpdump iperf3 curl procps python3-venv make
  isc-dhcp-client
  # the container integrations' end-to-end tests (tests/e2e/containers): real runtimes with a
  # busybox rootfs image; busybox-static replaces busybox (udhcpc included) and is what the
  # image copies, since a container has no shared libraries
  busybox-static podman runc containernetworking-plugins docker.io
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
policy=/usr/sbin/policy-rc.d; added_policy=0
if [ ! -e $policy ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null; $SUDO chmod +x $policy; added_policy=1
fi
trap '[ $added_policy = 1 ] && $SUDO rm -f $policy' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
