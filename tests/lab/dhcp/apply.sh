# Shared by dhclient.sh and udhcpc.sh (sourced): apply a lease inside the client's network
# namespace and record what the client saw. Writes only under $LAB_DHCP_DIR, never
# /etc/resolv.conf; `ip` runs in the namespace the client was started in. The ip commands
# are collected and run by one `ip -batch`, and the rest uses shell builtins where it can:
# with a hundred clients starting at once, forks are what a lease costs the machine.

LAB_IP=""

lab_ip() { # ARGS...: one more `ip` command for lab_apply
    LAB_IP="$LAB_IP$*
"
}

lab_apply() { # run the collected ip commands, IPv4 only (stops at the first that fails)
    if [ -n "$LAB_IP" ]; then
        ip -4 -batch - <<END
$LAB_IP
END
    fi
}

lab_record() { # REASON: the script's whole environment, after applying, as one event file
    events="$LAB_DHCP_DIR/events"
    set -- "$1" "$events"/*.env
    if [ -e "$2" ]; then seq=$(($# - 1)); else seq=0; fi
    name=$(printf '%04d-%s' "$seq" "$1")
    { env; echo "lab_time=$(date +%s.%N)"; } > "$events/.$name"
    mv "$events/.$name" "$events/$name.env"
}

lab_address() { # IFACE ADDRESS PREFIX-OR-MASK OLD-ADDRESS: a changed address replaces the old
    if [ -n "$4" ] && [ "$4" != "$2" ]; then lab_ip addr flush dev "$1"; fi
    lab_ip addr replace "$2/$3" dev "$1"
    lab_ip link set dev "$1" up
}

lab_mtu() { # IFACE MTU (nothing when the server sent none)
    if [ -n "$2" ]; then lab_ip link set dev "$1" mtu "$2"; fi
}

lab_routes() { # IFACE DEST/LEN GATEWAY ...: replaces the routes a previous lease installed
    iface=$1; shift
    lab_ip route flush dev "$iface" proto static
    while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then
            lab_ip route replace "$1" dev "$iface" proto static
        else
            lab_ip route replace "$1" via "$2" dev "$iface" proto static onlink
        fi
        shift 2
    done
}

lab_resolv() { # DOMAIN NAMESERVER...: the private resolv.conf
    domain=$1; shift
    {
        if [ -n "$domain" ]; then echo "search $domain"; fi
        for server in "$@"; do echo "nameserver $server"; done
    } > "$LAB_DHCP_DIR/resolv.conf"
}

lab_deconfigure() { # IFACE: no lease any more
    lab_ip route flush dev "$1" proto static
    lab_ip addr flush dev "$1"
    rm -f "$LAB_DHCP_DIR/resolv.conf"
}
