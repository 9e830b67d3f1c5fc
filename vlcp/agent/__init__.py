"""The per-server controller: binds OVS interfaces to logical ports and keeps flows right."""
