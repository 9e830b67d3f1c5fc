#!/bin/sh
# busybox udhcpc's -s script for the test lab: applies the lease with apply.sh and records
# each call. Classless routes (121, else 249) win over the router option (RFC 3442).
set -e
. "${0%/*}/apply.sh"

case "$1" in
bound | renew)
    old=""
    if [ -e "$LAB_DHCP_DIR/address" ]; then read -r old < "$LAB_DHCP_DIR/address"; fi
    lab_address "$interface" "$ip" "$mask" "$old"
    echo "$ip" > "$LAB_DHCP_DIR/address"
    lab_mtu "$interface" "${mtu:-}"
    routes=${staticroutes:-${msstaticroutes:-}}
    if [ -n "$routes" ]; then
        lab_routes "$interface" $routes
    elif [ -n "${router:-}" ]; then
        lab_routes "$interface" 0.0.0.0/0 ${router%% *}
    else
        lab_routes "$interface"
    fi
    lab_resolv "${domain:-}" ${dns:-}
    ;;
deconfig)
    lab_ip link set dev "$interface" up
    lab_deconfigure "$interface"
    rm -f "$LAB_DHCP_DIR/address"
    ;;
esac
lab_apply
lab_record "$1"
