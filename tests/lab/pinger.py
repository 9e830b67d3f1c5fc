"""A continuous ping with an exact count, run inside a host's namespace until SIGTERM.

``python -I pinger.py DESTINATION INTERVAL`` (root: a raw ICMP socket) sends one echo
request every INTERVAL seconds. iputils ping exits the moment it is signalled, so a request
still on its way would count as lost; this one stops sending, waits for the last replies
(until every request is answered, or ``DRAIN`` seconds at most), then prints one JSON
line: requests sent, replies received, and the wall time each unanswered request left (to
set a loss beside the events of a test). A line
``{"first_reply": SEQ}`` comes first, once traffic flows.

Standard library only: it runs with ``-I``, outside the test's environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time

DRAIN = 5.0
"""Seconds at most to wait for replies after the last request. A round trip here is
< 10 ms, but on a loaded machine a switch busy with new flows can hold a reply for a
second: the wait ends as soon as every request is answered, so only a lost one costs it."""
MAX_REQUESTS = 0xFFFF
"""ICMP sequence numbers are 16 bits: at 20 per second, 54 minutes; it stops sending then."""
ECHO_REQUEST, ECHO_REPLY = 8, 0


def checksum(data: bytes) -> int:
    """The internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    payload = b"vlcp-lab-pinger".ljust(32, b".")
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, checksum(header + payload), ident, seq) + payload


def reply_seq(packet: bytes, ident: int) -> int | None:
    """The sequence number of an echo reply to us in an IPv4 packet, else None."""
    offset = (packet[0] & 0x0F) * 4
    if len(packet) < offset + 8:
        return None
    kind, _, _, rid, seq = struct.unpack("!BBHHH", packet[offset : offset + 8])
    return seq if kind == ECHO_REPLY and rid == ident else None


def run(destination: str, interval: float) -> dict[str, object]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sent: dict[int, float] = {}  # seq -> wall time it left
    answered: set[int] = set()
    started = time.time()
    next_send = time.monotonic()
    deadline: float | None = None
    while True:
        now = time.monotonic()
        if deadline is None and (stopping or len(sent) >= MAX_REQUESTS):
            deadline = now + DRAIN
        if deadline is not None and (now >= deadline or len(answered) == len(sent)):
            break
        if deadline is None and now >= next_send:
            seq = len(sent) + 1
            sent[seq] = time.time()
            # No route or neighbour now: a lost request like any other.
            with contextlib.suppress(OSError):
                sock.sendto(echo_request(ident, seq), (destination, 0))
            next_send = max(next_send + interval, now)  # late: no burst to catch up
            continue
        wake = deadline if deadline is not None else next_send
        readable, _, _ = select.select([sock], [], [], max(wake - now, 0))
        if readable:
            seq = reply_seq(sock.recv(65535), ident)
            if seq in sent:
                if not answered:
                    print(json.dumps({"first_reply": seq}), flush=True)
                answered.add(seq)
    lost = sorted(set(sent) - answered)
    return {
        "started": started,
        "sent": len(sent),
        "received": len(answered),
        "lost_at": [sent[seq] for seq in lost],
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1], float(sys.argv[2]))), flush=True)
