"""Plugging container workloads into vlcp: the CNI plugin (`cni`) and what any runtime
integration shares (`endpoint`: the logical port and the addressing it implies, through the
REST API; `plumbing`: the veth pair and its OVS port).

The integrations are clients of the API, like the CLI: they describe ports through REST v1
(`vlcp.client`, standard library only) and never touch the store, so a runtime host needs
no store credentials, only the API's URL (and token).
"""
