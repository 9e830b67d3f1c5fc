"""The vlcp test lab: real services (OVS, ZooKeeper, etcd, Redis) in private, disposable places."""
