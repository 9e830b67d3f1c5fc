"""Bare-metal servers behind a hardware VTEP switch in vlcp's VXLAN networks, end to end.

Two vlcp servers (`vlcp run` each), the API (`vlcp api`), an emulated hardware switch
(openvswitch-vtep's `ovs-vtep`) on the same underlay, and its VTEP controller (`vlcp vtep
run`). A bare-metal host sits behind the switch on VLAN 100 of port p0; the binding of that
VLAN to a vxlan logical network is made through the API, and everything else follows from
the store: the switch learns the host's MAC, the servers tunnel to the switch.

The emulator polls its databases about once a second, in both directions (it sees a
binding, and it reports a learned MAC, each on its next poll): the time from binding to
the first ping is printed, and most of it is that.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from scapy.layers.inet import IP

from tests.lab.continuous_ping import ContinuousPing
from tests.lab.ovs import Host, connect_underlay
from tests.lab.vtep import BareMetal, VtepLab
from tests.lab.waiting import eventually

from .conftest import Cloud, CloudFactory, VtepFactory
from .converged import wait_like_fresh_controllers

BM_MAC = "02:00:00:00:00:99"
BM_IP = "10.0.0.99"
VMS = {
    "1": ("hv0", "02:00:00:00:00:01", "10.0.0.1"),
    "2": ("hv1", "02:00:00:00:00:02", "10.0.0.2"),
}
PING_DEADLINE = 30.0


async def vxlan_tenant(cloud: Cloud, tenant: str = "a") -> dict[str, Host]:
    """Logical network net-<tenant> over VXLAN with a VM on each server, both up; every
    tenant has the same addresses (`VMS`)."""
    api = cloud.api
    if tenant == "a":
        vnis = {"id": "vx", "type": "vxlan", "vnirange": [[5000, 5999]]}
        await api.create("physical-networks", vnis)
    network, subnet = f"net-{tenant}", f"sub-{tenant}"
    await api.create("logical-networks", {"id": network, "physicalnetwork": "vx"})
    await api.create("subnets", {"id": subnet, "logicalnetwork": network, "cidr": "10.0.0.0/24"})
    hosts = {}
    for n, (server, mac, ip) in VMS.items():
        port = f"{tenant}{n}"
        body = {"id": port, "logicalnetwork": network, "subnet": subnet, "mac_address": mac}
        await api.create("logical-ports", {**body, "ip_address": ip})
        hosts[port] = cloud.host(server, f"{ip}/24", mac=mac, port=port)
    for port in hosts:
        await api.wait_port_up(port, timeout=30)
    return hosts


async def pings(src: Host, ip: str, deadline: float = PING_DEADLINE) -> bool:
    return await asyncio.to_thread(src.ping_ok, ip, deadline=deadline)


async def silent(src: Host, ip: str) -> bool:
    """No reply to three pings."""
    return (await asyncio.to_thread(src.ping, ip, count=3, timeout=1.0)).received == 0


async def test_bare_metal_and_vms_ping_both_ways_until_unbound(
    cloud_factory: CloudFactory, vtep_lab: VtepLab, vtep_factory: VtepFactory
) -> None:
    cloud = await cloud_factory(["hv0", "hv1"])
    switch = vtep_lab.switch("ps0")
    connect_underlay(cloud.servers["hv1"].hv, switch)
    switch.start_emulator()
    bm: BareMetal = vtep_lab.bare_metal(switch, f"{BM_IP}/24", vlan=100, mac=BM_MAC, port="p0")
    vms = await vxlan_tenant(cloud)
    controller = vtep_factory(switch, "vtep-a")
    await controller.ready(cloud.store)

    bound_at = time.monotonic()
    await asyncio.to_thread(cloud.api.client.vtep_bind, "ps0", "p0", 100, "net-a")

    async def written() -> bool:
        return await asyncio.to_thread(switch.shows, "0100", "list-bindings", "ps0", "p0")

    await eventually(written, 10, what="the binding in the switch's database")
    on_switch = time.monotonic() - bound_at
    assert await pings(bm, vms["a1"].ip), "bare metal -> VM on hv0"
    first_ping = time.monotonic() - bound_at
    assert await pings(bm, vms["a2"].ip), "bare metal -> VM on hv1"
    for vm in vms.values():
        assert await pings(vm, BM_IP), f"{vm} -> bare metal"
    print(
        f"\nbinding -> in the switch's hardware_vtep DB: {on_switch:.2f} s (vlcp); "
        f"-> first bare-metal ping to a VM: {first_ping:.2f} s (the rest: ovs-vtep's polls)"
    )

    await asyncio.to_thread(cloud.api.client.vtep_unbind, "ps0", "p0", 100)

    async def cut() -> bool:
        return await silent(bm, vms["a1"].ip) and await silent(vms["a2"], BM_IP)

    await eventually(cut, 30, what="unbinding to cut the bare-metal host off")
    assert "net-a" not in switch.vtep_ctl("list-ls")


async def test_two_tenants_with_the_same_addresses_behind_one_switch_and_failover(
    cloud_factory: CloudFactory, vtep_lab: VtepLab, vtep_factory: VtepFactory
) -> None:
    """Tenant B (another vxlan network, the same VM and bare-metal addresses) on VLAN 200 of
    the same switch port sees nothing of tenant A; two controller instances, the first
    SIGKILLed: the second takes the switch over and applies the next change."""
    cloud = await cloud_factory(["hv0", "hv1"])
    switch = vtep_lab.switch("ps0")
    connect_underlay(cloud.servers["hv1"].hv, switch)
    switch.start_emulator()
    vms = await vxlan_tenant(cloud)
    vms |= await vxlan_tenant(cloud, "b")
    bms = {
        tenant: vtep_lab.bare_metal(switch, f"{BM_IP}/24", vlan=vlan, mac=BM_MAC, port="p0")
        for tenant, vlan in (("a", 100), ("b", 200))
    }
    first = vtep_factory(switch, "vtep-1")
    await first.ready(cloud.store)
    second = vtep_factory(switch, "vtep-2")  # waits for the lock
    for tenant, vlan in (("a", 100), ("b", 200)):
        await asyncio.to_thread(cloud.api.client.vtep_bind, "ps0", "p0", vlan, f"net-{tenant}")
    for tenant in "ab":
        for vm in (vms[f"{tenant}1"], vms[f"{tenant}2"]):
            assert await pings(bms[tenant], vm.ip), f"bare metal {tenant} -> {vm}"

    capture = bms["b"].capture("icmp")  # tenant B's host: it has tenant A's addresses
    try:
        assert await pings(bms["a"], vms["a1"].ip) and await pings(vms["a2"], BM_IP)
        assert capture.packets() == [], "tenant B's bare-metal host saw tenant A's pings"
        assert await pings(bms["b"], vms["b2"].ip)
        capture.wait_for(lambda packet: packet.haslayer(IP), count=2)  # and sees its own
    finally:
        capture.stop()

    assert await first.active(cloud.store), "the second instance wrote while the first lived"
    killed_at = time.monotonic()
    first.kill()
    await second.ready(cloud.store)
    print(
        f"\nVTEP controller failover (SIGKILL -> second instance active): "
        f"{time.monotonic() - killed_at:.2f} s"
    )
    await asyncio.to_thread(cloud.api.client.vtep_unbind, "ps0", "p0", 200)

    async def b_cut() -> bool:
        return await silent(bms["b"], vms["b1"].ip)

    await eventually(b_cut, 30, what="the second instance to unbind tenant B")
    assert await pings(bms["a"], vms["a2"].ip), "tenant A still served after the failover"


async def test_restarting_every_controller_loses_no_ping(
    cloud_factory: CloudFactory, vtep_lab: VtepLab, vtep_factory: VtepFactory, tmp_path: Path
) -> None:
    """Continuous pings (20/s) between the bare-metal host and VMs on both servers while
    the VTEP controller and both servers' controllers are restarted one after the other:
    neither side flushes what it finds, so not one request is lost."""
    cloud = await cloud_factory(["hv0", "hv1"])
    switch = vtep_lab.switch("ps0")
    connect_underlay(cloud.servers["hv1"].hv, switch)
    switch.start_emulator()
    bm = vtep_lab.bare_metal(switch, f"{BM_IP}/24", vlan=100, mac=BM_MAC, port="p0")
    vms = await vxlan_tenant(cloud)
    controller = vtep_factory(switch, "vtep-a")
    await controller.ready(cloud.store)
    await asyncio.to_thread(cloud.api.client.vtep_bind, "ps0", "p0", 100, "net-a")
    assert await pings(bm, vms["a1"].ip) and await pings(vms["a2"], BM_IP)

    flows = [
        ContinuousPing(bm, vms["a1"].ip, tmp_path, label="bm-a1"),
        ContinuousPing(vms["a2"], BM_IP, tmp_path, label="a2-bm"),
    ]
    for flow in flows:
        await asyncio.to_thread(flow.start)
    try:
        restarts_began = time.time()
        assert controller.stop() == 0, controller.log_tail()
        controller.start()
        await controller.ready(cloud.store)
        for server in cloud.servers.values():
            assert server.controller.stop() == 0, server.controller.log_tail()
            server.controller.start()
            await server.controller.ready(cloud.store)
        # the pings keep running until the restarted controllers reconciled their flows
        await wait_like_fresh_controllers(cloud.store, cloud.servers.values())
    finally:
        for flow in flows:
            flow.terminate()
    reports = [await asyncio.to_thread(flow.stop) for flow in flows]
    for report in reports:  # sending before the first stop, stopped after the last ready
        assert report.started < restarts_began and report.lost == 0, str(report)
