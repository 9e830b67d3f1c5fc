"""A disposable Open vSwitch lab on one machine (root only): what ``vlcp demo`` builds.

Private OVS instances ("hypervisors") and hosts in network namespaces, underlay links between
them, and a registry that removes every namespace, process and directory it created, by
name and PID, also when the program dies half-way. The test suite re-exports these modules
from ``tests.lab`` and adds its pytest fixtures and scapy decoding there.
"""
