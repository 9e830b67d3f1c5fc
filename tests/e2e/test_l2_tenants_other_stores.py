"""The two tenants of `test_l2_tenants`, with every `vlcp api` and `vlcp run` on etcd and on
Redis: the backends whose scoped watches filter on the server (etcd range watches, Redis
channels per scope) carry a real cluster's binding, announcements and isolation, not only
the store contract suite. (sqlite and ZooKeeper run every end-to-end test already.)
"""

from __future__ import annotations

import pytest

from tests.lab.naming import unique_name

from .test_l2_tenants import (  # noqa: F401  (collected here, on these stores)
    pytestmark,
    test_each_tenant_reaches_its_own_hosts,
    test_floods_stay_inside_their_tenant,
)

STORE_TIMEOUT = 5.0


@pytest.fixture(params=["etcd", "redis"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Overrides the end-to-end store: a private namespace on the session's server."""
    namespace = unique_name("e2e")
    if request.param == "etcd":
        etcd = request.getfixturevalue("etcd")
        host = etcd.endpoint.removeprefix("http://")
        return f"etcd://{host}/{namespace}?timeout={STORE_TIMEOUT:g}"
    redis = request.getfixturevalue("redis_server")
    return f"{redis.url}?prefix={namespace}&timeout={STORE_TIMEOUT:g}"
