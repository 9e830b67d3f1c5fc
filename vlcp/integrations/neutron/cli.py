"""`vlcp-neutron sync`: repair vlcp after it missed Neutron's writes, and say what changed.

Reads both sides through their REST APIs (Neutron's v2.0 as an admin, vlcp's v1), so it
runs anywhere both answer, with or without Neutron installed, and needs no database
credentials. `sync.plan` decides; this module reads Neutron's side and prints, `repair`
reads vlcp's and writes. `--dry-run` prints the plan only. Exit status 1 if a write
failed or a network could not be mapped.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

from vlcp.client import DEFAULT_URL, ApiError, Client

from . import mapping, sync
from .repair import apply_all, read_vlcp
from .writer import Writer


def read_neutron(url: str, token: str | None) -> sync.State:
    """Neutron's networks (with their provider attributes), subnets, ports and routers (None
    if Neutron has no router API: its L3 service plugin is not loaded)."""

    def listing(plural: str) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"{url.rstrip('/')}/v2.0/{plural}")
        if token:
            request.add_header("X-Auth-Token", token)
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)[plural]

    try:
        routers: list[dict[str, Any]] | None = listing("routers")
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
        routers = None
    return sync.State(listing("networks"), listing("subnets"), listing("ports"), routers)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="vlcp-neutron", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("sync", help="make vlcp hold what Neutron holds")
    run.add_argument("--neutron-url", default="http://127.0.0.1:9696")
    run.add_argument("--neutron-token", help="a Keystone token (X-Auth-Token) of an admin")
    run.add_argument("--api", default=DEFAULT_URL, help="vlcp's REST API")
    run.add_argument("--token", help="vlcp's API bearer token")
    run.add_argument("--vxlan-physical-network", default="vxlan")
    run.add_argument(
        "--physical-network-mapping",
        action="append",
        default=[],
        metavar="NEUTRON:VLCP",
        help="as [ml2_vlcp] physical_network_mappings, one pair per option",
    )
    run.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    pairs = (pair.split(":", 1) for pair in args.physical_network_mapping)
    settings = mapping.Settings(dict(pairs), args.vxlan_physical_network)
    client = Client(args.api, token=args.token)
    try:
        changes, skipped = sync.plan(
            read_neutron(args.neutron_url, args.neutron_token), read_vlcp(client), settings
        )
    except (OSError, ApiError) as error:
        print(f"vlcp-neutron: cannot read both sides: {error}", file=sys.stderr)
        return 1
    for reason in skipped:
        print(f"skipped {reason}")
    if args.dry_run:
        done = True
        for change in changes:
            print(change)
    else:
        done = apply_all(Writer(client), changes, print)
    if not changes:
        print("in sync")
    return 0 if done and not skipped else 1


if __name__ == "__main__":
    sys.exit(main())
