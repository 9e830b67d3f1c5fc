"""Southbound: how a controller talks to its Open vSwitch (OpenFlow and OVSDB)."""
