# Shared by dhclient.sh and udhcpc.sh (sourced): apply a lease inside the client's network
# namespace and record what the client saw. Writes only under $LAB_DHCP_DIR, never
# /etc/resolv.conf; `ip` runs in the namespace the client was started in.

lab_record() { # REASON: the script's whole environment, after applying, as one event file
    events="$LAB_DHCP_DIR/events"
    seq=$(ls "$events" | wc -l)
    name=$(printf '%04d-%s' "$seq" "$1")
    { env; echo "lab_time=$(date +%s.%N)"; } > "$events/.$name"
    mv "$events/.$name" "$events/$name.env"
}

lab_address() { # IFACE ADDRESS PREFIX-OR-MASK OLD-ADDRESS: a changed address replaces the old
    if [ -n "$4" ] && [ "$4" != "$2" ]; then ip -4 addr flush dev "$1"; fi
    ip addr replace "$2/$3" dev "$1"
    ip link set dev "$1" up
}

lab_mtu() { # IFACE MTU (nothing when the server sent none)
    if [ -n "$2" ]; then ip link set dev "$1" mtu "$2"; fi
}

lab_routes() { # IFACE DEST/LEN GATEWAY ...: replaces the routes a previous lease installed
    iface=$1; shift
    ip -4 route flush dev "$iface" proto static
    while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then
            ip route replace "$1" dev "$iface" proto static
        else
            ip route replace "$1" via "$2" dev "$iface" proto static onlink
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
    ip -4 route flush dev "$1" proto static
    ip -4 addr flush dev "$1"
    rm -f "$LAB_DHCP_DIR/resolv.conf"
}
