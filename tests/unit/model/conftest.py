"""Model tests run on the embedded sqlite store (on tmpfs when there is one: fast fsyncs)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from vlcp.model import Model
from vlcp.store import Store, open_store

from .invariants import check

SHM = Path("/dev/shm")


def fresh_db_dir() -> str:
    return tempfile.mkdtemp(prefix="vlcp-model-", dir=SHM if SHM.is_dir() else None)


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    directory = fresh_db_dir()
    store = await open_store(f"sqlite://{directory}/state.db")
    yield store
    await store.close()
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)


@pytest.fixture
async def model(store: Store) -> AsyncIterator[Model]:
    model = Model(store)
    yield model
    check((await store.read_prefix("")).values)


@pytest.fixture
async def net(model: Model) -> Model:
    """p1 (vlan 100-109) with n1 and subnet s1 10.0.0.0/24 (gateway .1, pool .10-.20)."""
    await model.create("physical-networks", {"id": "p1", "type": "vlan", "vlanrange": [[100, 109]]})
    await model.create("logical-networks", {"id": "n1", "physicalnetwork": "p1"})
    await model.create(
        "subnets",
        {
            "id": "s1",
            "logicalnetwork": "n1",
            "cidr": "10.0.0.0/24",
            "gateway": "10.0.0.1",
            "allocated_start": "10.0.0.10",
            "allocated_end": "10.0.0.20",
        },
    )
    return model
