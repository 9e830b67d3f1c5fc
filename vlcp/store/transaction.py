"""The read-modify-write handle given to `Store.transact` functions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import limits
from .backend import Backend
from .codec import check_key, decode_value, encode_value
from .errors import TransactionTooLarge


class Transaction:
    """Records what a transaction function reads (with versions) and wants to write.

    Reads see the transaction's own writes. Nothing reaches the store until the function
    returns; then the reads are checked and the writes applied in one atomic commit.
    """

    def __init__(self, backend: Backend, *, internal: bool = False) -> None:
        self._backend = backend
        self._internal = internal
        self._read_versions: dict[str, int] = {}
        self._read_data: dict[str, bytes | None] = {}
        self._writes: dict[str, bytes | None] = {}
        self._write_bytes = 0

    async def get(self, key: str) -> Any:
        """The value of `key`, or None when it does not exist."""
        return (await self.get_many([key]))[key]

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Values of many keys, fetched in one round trip (None for absent keys)."""
        keys = [check_key(k, internal=self._internal) for k in keys]
        wanted = [
            k for k in dict.fromkeys(keys) if k not in self._writes and k not in self._read_data
        ]
        if len(self._read_versions) + len(wanted) > limits.MAX_TXN_READS:
            raise TransactionTooLarge(f"a transaction may read at most {limits.MAX_TXN_READS} keys")
        if wanted:
            for key, item in (await self._backend.fetch(wanted)).items():
                self._read_versions[key] = item.version
                self._read_data[key] = item.data
        return {
            k: decode_value(self._writes[k] if k in self._writes else self._read_data[k])
            for k in keys
        }

    def put(self, key: str, value: Any) -> None:
        """Set `key` to `value` (any JSON value but None) when the transaction commits."""
        self._record_write(check_key(key, internal=self._internal), encode_value(value))

    def delete(self, key: str) -> None:
        """Delete `key` when the transaction commits (no error if it does not exist)."""
        self._record_write(check_key(key, internal=self._internal), None)

    def _record_write(self, key: str, data: bytes | None) -> None:
        """Keep the write, refusing it (and leaving the transaction as it was) past the limits."""
        previous = self._writes.get(key)
        size = self._write_bytes + len(data or b"") - len(previous or b"")
        if key not in self._writes:
            size += len(key)
            if len(self._writes) >= limits.MAX_TXN_WRITES:
                raise TransactionTooLarge(
                    f"a transaction may write at most {limits.MAX_TXN_WRITES} keys"
                )
        if size > limits.MAX_TXN_BYTES:
            raise TransactionTooLarge(
                f"a transaction may write at most {limits.MAX_TXN_BYTES} bytes, "
                f"this one writes {size}"
            )
        self._writes[key] = data
        self._write_bytes = size

    @property
    def read_versions(self) -> dict[str, int]:
        return self._read_versions

    @property
    def writes(self) -> dict[str, bytes | None]:
        return self._writes
