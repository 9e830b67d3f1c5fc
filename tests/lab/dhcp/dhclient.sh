#!/bin/sh
# dhclient's -sf script for the test lab (replaces dhclient-script): applies the lease with
# apply.sh and records each call. Classless routes (121, else 249) win over the router
# option, as RFC 3442 asks.
set -e
. "${0%/*}/apply.sh"

rfc3442_pairs() { # "24 10 1 0 10 0 0 1 ..." (the bytes) -> "10.1.0.0/24 10.0.0.1 ..."
    set -- $(echo "$1" | tr , ' ')
    while [ $# -ge 5 ]; do
        len=$1; shift
        net=""; i=0
        while [ $i -lt 4 ]; do
            if [ $((i * 8)) -lt "$len" ]; then octet=$1; shift; else octet=0; fi
            net="$net${net:+.}$octet"; i=$((i + 1))
        done
        printf '%s/%s %s.%s.%s.%s ' "$net" "$len" "$1" "$2" "$3" "$4"
        shift 4
    done
}

case "$reason" in
PREINIT)
    lab_ip link set dev "$interface" up
    ;;
BOUND | RENEW | REBIND | REBOOT)
    lab_address "$interface" "$new_ip_address" "$new_subnet_mask" "${old_ip_address:-}"
    lab_mtu "$interface" "${new_interface_mtu:-}"
    routes=${new_rfc3442_classless_static_routes:-${new_ms_classless_static_routes:-}}
    if [ -n "$routes" ]; then
        lab_routes "$interface" $(rfc3442_pairs "$routes")
    elif [ -n "${new_routers:-}" ]; then
        lab_routes "$interface" 0.0.0.0/0 ${new_routers%% *}
    else
        lab_routes "$interface"
    fi
    lab_resolv "${new_domain_name:-}" ${new_domain_name_servers:-}
    ;;
EXPIRE | FAIL | RELEASE)
    lab_deconfigure "$interface"
    ;;
esac
lab_apply
lab_record "$reason"
