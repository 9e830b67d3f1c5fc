"""OpenStack Neutron: an ML2 mechanism driver that makes Neutron's networks, subnets and ports
vlcp's, one to one and with Neutron's ids as vlcp's ids.

- `mapping`: Neutron's dicts to REST v1 bodies, pure functions (tested without Neutron);
- `writer`: those bodies sent through `vlcp.client` with retries, vlcp's refusals told
  apart from vlcp being unreachable;
- `sync`: the writes that repair vlcp after it missed Neutron's, pure; `cli` runs them
  (`vlcp-neutron sync`), reading both sides through their REST APIs;
- `driver`: the `MechanismDriver` ML2 loads through the `neutron.ml2.mechanism_drivers`
  entry point `vlcp`, and `routers`, its hooks on Neutron's router events. Only these two
  import neutron-lib and oslo, so only Neutron's own environment imports them; vlcp's
  venv never has Neutron installed.
"""
