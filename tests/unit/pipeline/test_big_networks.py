"""A network with more local ports than one flow can list still floods to every one.

OpenFlow messages stop at 64 KiB (about 4,000 outputs); with 10,000 ports in one network
on one server, the flooding is a chain of flows (see `l2.FLOOD_CHUNK`). Traced through the
simulator, a broadcast must reach every other port exactly once, then the peer servers,
and every flow must encode.
"""

from __future__ import annotations

import pytest

from vlcp.pipeline.compile import compile_all
from vlcp.pipeline.l2 import FLOOD_CHUNK, MAX_FLOOD_PARTS
from vlcp.pipeline.view import LocalPort, Network, RemotePort, View
from vlcp.southbound.openflow.codec import codec_for
from vlcp.southbound.openflow.wire import OFP14

from .sim import trace

TUNNEL = 9
VTEPS = ["192.0.2.2", "192.0.2.3"]
BROADCAST = {"eth_src": "02:00:00:00:00:01", "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0800}


def mac(i: int) -> str:
    return "02:00:{:02x}:{:02x}:{:02x}:{:02x}".format(*i.to_bytes(4, "big"))


def big_view(n: int) -> View:
    network = Network("n", "vxlan", 7, tag=5000)
    ports = {f"p{i}": LocalPort(f"p{i}", "n", 10 + i, mac(i)) for i in range(n)}
    remotes = {
        f"r{k}": RemotePort(f"r{k}", "n", mac(100_000 + k), vtep) for k, vtep in enumerate(VTEPS)
    }
    return View(networks={"n": network}, ports=ports, remotes=remotes, tunnel_ofport=TUNNEL)


@pytest.mark.parametrize("n", [FLOOD_CHUNK - 1, FLOOD_CHUNK + 1, 2 * FLOOD_CHUNK + 500])
def test_a_broadcast_reaches_every_port_once_and_every_peer(n: int) -> None:
    flows = [f for owned in compile_all(big_view(n)).values() for f in owned]
    sender = 10
    out = trace(flows, sender, {**BROADCAST, "eth_src": mac(0)})
    local = [o.port for o in out if o.port != TUNNEL]
    assert sorted(local) == list(range(11, 10 + n))  # all but the sender, once each
    assert sorted(o["tun_ipv4_dst"] for o in out if o.port == TUNNEL) == VTEPS
    from_peer = trace(
        flows,
        TUNNEL,
        {**BROADCAST, "tunnel_id": 5000, "tun_ipv4_src": VTEPS[0], "eth_src": mac(100_000)},
    )
    assert sorted(o.port for o in from_peer) == list(range(10, 10 + n))  # split horizon
    codec = codec_for(OFP14)
    assert all(len(codec.add_flow(f)) <= 0xFFFF for f in flows)


def test_too_many_ports_for_the_resubmit_depth_are_refused() -> None:
    with pytest.raises(ValueError, match="parts"):
        compile_all(big_view(FLOOD_CHUNK * MAX_FLOOD_PARTS + 1))
