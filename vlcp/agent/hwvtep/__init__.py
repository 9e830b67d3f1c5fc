"""The hardware VTEP controller: keeps a switch's `hardware_vtep` database equal to the store.

`wanted` says what the switch should hold and what the store should hold of what the switch
learned (pure, from store values and rows); `plan` turns the difference between the switch's
rows and `wanted` into one OVSDB transaction (pure); `controller` runs them against a live
switch and store, behind an OVSDB lock per switch. See docs/hardware-vtep.md.
"""
