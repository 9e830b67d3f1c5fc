"""Shared pytest configuration: the lab plugins with real services and private OVS, and
hypothesis without a per-example deadline.

A deadline is a wall-clock assertion: on a loaded 2-core CI machine a correct example can
take longer than 200 ms and fail the test for nothing (it happened to the DHCP codec's
round trip). Speed is measured in bench/, never asserted in tests.
"""

from hypothesis import settings

settings.register_profile("vlcp", deadline=None)
settings.load_profile("vlcp")

pytest_plugins = [
    "tests.lab.fixtures_services",
    "tests.lab.fixtures_ovs",
    "tests.lab.vtep",
]
