"""Shared pytest configuration: the lab plugins with real services and private OVS."""

pytest_plugins = [
    "tests.lab.fixtures_services",
    "tests.lab.fixtures_ovs",
]
