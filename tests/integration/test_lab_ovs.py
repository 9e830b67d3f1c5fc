"""Proof that the OVS lab fixtures build real, isolated topologies and clean up after them.

Each test checks the data path end to end (packets really cross OVS, or really do not) so
that later controller tests can trust a failing ping to mean "the controller is wrong", not
"the lab is broken".
"""

from __future__ import annotations

import secrets
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from tests.lab.fixtures_ovs import HostFactory, HypervisorFactory
from tests.lab.marks import needs_ovs_lab
from tests.lab.naming import RUN_PREFIX
from tests.lab.netns import (
    REGISTRY,
    list_netns,
    netns_inode,
    pid_alive,
    pids_in_netns,
    pids_matching,
    wait_until,
)
from tests.lab.ovs import Hypervisor, OvsLab, connect_underlay

pytestmark = [
    pytest.mark.root,
    needs_ovs_lab,
]

REPO = Path(__file__).resolve().parents[2]
NORMAL = "priority=0,actions=NORMAL"
VNI = 7777
TUNNEL_OFPORT = 100
HOST_OFPORT = 1


def is_echo_request(packet: Packet) -> bool:
    """An ICMP echo request (type 8)."""
    return ICMP in packet and packet[ICMP].type == 8


# ---------------------------------------------------------------- one hypervisor


def test_hosts_on_one_bridge_ping_with_normal_flow(
    hypervisor: Hypervisor, host_factory: HostFactory
) -> None:
    hypervisor.add_bridge("br0", fail_mode="secure")
    h1 = host_factory(hypervisor, "br0", "10.10.0.1/24", ofport=HOST_OFPORT, iface_id="vif-1")
    h2 = host_factory(hypervisor, "br0", "10.10.0.2/24", port_name="vif2")
    hypervisor.add_flows("br0", [NORMAL])

    assert hypervisor.dump_flows("br0") == ["priority=0 actions=NORMAL"]
    assert h1.ofport == HOST_OFPORT
    assert hypervisor.vsctl("get", "interface", h1.port_name, "external_ids:iface-id") == "vif-1"
    assert h1.ping_ok(h2.ip)
    forward, back = h1.ping(h2.ip, count=3), h2.ping(h1.ip, count=3)
    assert (forward.sent, forward.received) == (3, 3)
    assert (back.sent, back.received) == (3, 3)


def test_secure_bridge_without_flows_isolates_hosts(
    hypervisor: Hypervisor, host_factory: HostFactory
) -> None:
    hypervisor.add_bridge("br0", fail_mode="secure")
    h1 = host_factory(hypervisor, "br0", "10.10.0.1/24")
    h2 = host_factory(hypervisor, "br0", "10.10.0.2/24")
    # Static neighbours: without them ARP would fail first and no ICMP would even leave h1,
    # so "ping failed" would prove nothing about the data path.
    h1.add_neighbor(h2.ip, h2.mac)
    h2.add_neighbor(h1.ip, h1.mac)
    assert hypervisor.dump_flows("br0") == []

    left = h1.capture("icmp")
    arrived = h2.capture("icmp or arp")
    result = h1.ping(h2.ip, count=3, interval=0.2, timeout=1)

    assert (result.sent, result.received) == (3, 0)
    assert len(left.wait_for(is_echo_request, count=3)) == 3  # they did leave h1 ...
    assert arrived.stop() == []  # ... and never reached h2

    # Positive control: the same capture setup does see packets once a flow exists.
    arrived = h2.capture("icmp")
    hypervisor.add_flows("br0", [NORMAL])
    assert h1.ping_ok(h2.ip)
    assert arrived.wait_for(is_echo_request)


def test_capture_sees_crafted_packet(hypervisor: Hypervisor, host_factory: HostFactory) -> None:
    hypervisor.add_bridge("br0")  # standalone: NORMAL without flows
    sender = host_factory(hypervisor, "br0", "10.10.0.1/24", mac="02:00:00:00:10:01")
    receiver = host_factory(hypervisor, "br0", "10.10.0.2/24")
    token = secrets.token_hex(8).encode()
    capture = receiver.capture("udp port 4242")

    sender.send(
        Ether(src=sender.mac, dst=receiver.mac)
        / IP(src=sender.ip, dst=receiver.ip)
        / UDP(sport=40000, dport=4242)
        / Raw(token)
    )

    [packet] = capture.wait_for(lambda p: Raw in p and p[Raw].load == token)
    assert packet[Ether].src == "02:00:00:00:10:01"
    assert (packet[IP].src, packet[IP].dst) == (sender.ip, receiver.ip)
    assert packet[UDP].dport == 4242


def test_restart_vswitchd_keeps_ports_and_vtep_address(
    hypervisor_factory: HypervisorFactory, host_factory: HostFactory
) -> None:
    hv_a, hv_b = hypervisor_factory.many(2)
    connect_underlay(hv_a, hv_b)
    hv_a.add_bridge("br0")
    h1 = host_factory(hv_a, "br0", "10.10.0.1/24")
    h2 = host_factory(hv_a, "br0", "10.10.0.2/24")
    old_pid = (hv_a.dir / "ovs-vswitchd.pid").read_text()

    hv_a.restart_vswitchd()

    assert (hv_a.dir / "ovs-vswitchd.pid").read_text() != old_pid
    assert h1.ping_ok(h2.ip)  # veth ports survive a restart
    assert hv_a.vtep_ip is not None and hv_b.vtep_ip is not None
    underlay = hv_a.exec("ping", "-n", "-c", "1", "-i", "0.2", "-w", "5", hv_b.vtep_ip)
    assert underlay.returncode == 0


def test_controller_target_reaches_unix_listener_outside_rundir(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    """vswitchd only dials unix: controllers in its rundir; the symlink makes ours reachable."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "ctl.sock"))
    listener.listen(1)
    listener.settimeout(5)
    with listener:
        target = hypervisor.controller_target(tmp_path / "ctl.sock")
        assert target.startswith(f"unix:{hypervisor.dir}/")
        hypervisor.add_bridge("br0", fail_mode="secure", controller=target)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            version, msg_type = conn.recv(8)[:2]
    assert (version, msg_type) == (0x06, 0)  # OFPT_HELLO offering up to OpenFlow 1.5


# ---------------------------------------------------------------- two hypervisors


def _vxlan_flows(remote_vtep: str) -> list[str]:
    """What a controller would push: host port <-> tunnel with an explicit VNI and peer."""
    return [
        f"table=0,priority=100,in_port={HOST_OFPORT},"
        f"actions=set_field:{remote_vtep}->tun_dst,set_field:{VNI}->tun_id,output:{TUNNEL_OFPORT}",
        f"table=0,priority=100,in_port={TUNNEL_OFPORT},tun_id={VNI},actions=output:{HOST_OFPORT}",
        "table=0,priority=0,actions=drop",
    ]


def test_hosts_on_two_hypervisors_ping_over_vxlan(
    hypervisor_factory: HypervisorFactory, host_factory: HostFactory
) -> None:
    hv_a, hv_b = hypervisor_factory.many(2)
    link = connect_underlay(hv_a, hv_b)
    hosts = []
    for hv, ip in ((hv_a, "10.20.0.1/24"), (hv_b, "10.20.0.2/24")):
        hv.add_bridge("br-int", fail_mode="secure")
        hv.add_tunnel_port("br-int", "vxlan0", ofport=TUNNEL_OFPORT, remote_ip="flow", key="flow")
        hosts.append(host_factory(hv, "br-int", ip, ofport=HOST_OFPORT))
    for hv, peer in ((hv_a, hv_b), (hv_b, hv_a)):
        assert peer.vtep_ip is not None
        hv.add_flows("br-int", _vxlan_flows(peer.vtep_ip))
    host_a, host_b = hosts
    wire = hv_b.capture(link.port, "udp port 4789")

    # The first packet may be lost while OVS resolves the tunnel neighbour: ping_ok retries.
    assert host_a.ping_ok(host_b.ip, deadline=5)
    result = host_a.ping(host_b.ip, count=3)
    assert (result.sent, result.received) == (3, 3)

    [encapsulated, *_] = wire.wait_for(
        lambda p: VXLAN in p and p[VXLAN].vni == VNI and is_echo_request(p[VXLAN])
    )
    assert (encapsulated[IP].src, encapsulated[IP].dst) == (hv_a.vtep_ip, hv_b.vtep_ip)
    assert "tnl_push" in hv_a.appctl("dpctl/dump-flows")


# ---------------------------------------------------------------- cleanup


def test_lab_close_leaves_no_namespaces_or_processes() -> None:
    lab = OvsLab()
    try:
        hv_a, hv_b = lab.hypervisor("a"), lab.hypervisor("b")
        connect_underlay(hv_a, hv_b)
        hv_a.add_bridge("br0")
        host = lab.host(hv_a, "br0", "10.10.0.1/24")
        host.capture("icmp")
        hv_b.capture("lo")
        names = [hv_a.netns, hv_b.netns, host.netns]
        inodes = [netns_inode(name) for name in names]
        dirs = [str(hv_a.dir), str(hv_b.dir), str(host.capture_dir)]
        pids = REGISTRY.live_pids()
        assert len(pids) >= 6  # 2x ovsdb-server, 2x vswitchd, 2x tcpdump
    finally:
        lab.close()

    assert [ns for ns in list_netns() if ns.startswith(RUN_PREFIX)] == []
    assert pids_in_netns(inodes) == []
    assert [pid for d in dirs for pid in pids_matching(d)] == []
    assert REGISTRY.snapshot() == ([], [], [])
    assert not any(pid_alive(pid) for pid in pids)
    assert not any(Path(d).exists() for d in dirs)


_INTERRUPTED_CHILD = """
import time
from tests.lab.naming import RUN_PREFIX
from tests.lab.ovs import OvsLab
lab = OvsLab()
hv = lab.hypervisor("child")
hv.add_bridge("br0")
host = lab.host(hv, "br0", "10.10.0.1/24")
host.capture("icmp")
print("ready", RUN_PREFIX, flush=True)
time.sleep(60)
"""


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One stdout line from a child, or fail after ``timeout`` (never block forever)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("child printed nothing")
    return proc.stdout.readline()


def test_interrupted_run_cleans_up_at_exit() -> None:
    """Ctrl-C in a run that never reaches teardown: the atexit hook removes everything."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_CHILD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_line(proc, timeout=20)
        assert line.startswith("ready"), (line, proc.stderr.read() if proc.poll() else "")
        prefix = line.split()[1]
        assert any(ns.startswith(prefix) for ns in list_netns())
        assert len(pids_matching(f"{prefix}-")) >= 3  # ovsdb, vswitchd, tcpdump

        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert "KeyboardInterrupt" in stderr
    assert [ns for ns in list_netns() if ns.startswith(prefix)] == []
    wait_until(lambda: not pids_matching(f"{prefix}-"), timeout=2, message="no child pids")
