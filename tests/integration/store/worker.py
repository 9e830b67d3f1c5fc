"""Store clients run as separate OS processes by the contract tests.

    python -m tests.integration.store.worker transfer URL WORKER_ID COUNT ACCOUNTS [PAUSE]
    python -m tests.integration.store.worker batches URL KEYS_PER_BATCH
    python -m tests.integration.store.worker session URL KEY

Each prints one line per committed step, so the test knows what was acknowledged.
"""

from __future__ import annotations

import asyncio
import random
import sys

from vlcp.store import Transaction, open_store


async def transfer(url: str, worker: str, count: int, accounts: int, pause: float = 0.0) -> None:
    """Move random amounts between accounts; count own transfers in the same transaction.

    `pause` (seconds between transfers) spreads the transfers over time, so that a test can
    fail servers while they run.
    """
    store = await open_store(url)
    rng = random.Random(worker)
    for number in range(count):
        if pause and number:
            await asyncio.sleep(pause)
        src, dst = rng.sample(range(accounts), 2)
        amount = rng.randint(1, 10)

        async def move(
            txn: Transaction, src: int = src, dst: int = dst, amount: int = amount
        ) -> None:
            values = await txn.get_many([f"acct/{src}", f"acct/{dst}", f"done/{worker}"])
            txn.put(f"acct/{src}", values[f"acct/{src}"] - amount)
            txn.put(f"acct/{dst}", values[f"acct/{dst}"] + amount)
            txn.put(f"done/{worker}", (values[f"done/{worker}"] or 0) + 1)

        await store.transact(move)
    await store.close()
    print("finished", flush=True)


async def batches(url: str, keys_per_batch: int) -> None:
    """Commit numbered batches of keys forever; the test kills this process mid-way."""
    store = await open_store(url)
    for number in range(1_000_000):

        async def write(txn: Transaction, number: int = number) -> None:
            for i in range(keys_per_batch):
                txn.put(f"batch/{number}/{i}", {"n": number, "pad": "x" * 200})

        await store.transact(write)
        print(number, flush=True)


async def session(url: str, key: str) -> None:
    """Hold a session with one key until killed."""
    store = await open_store(url)
    sess = await store.open_session(ttl=2.0)
    await sess.put(key, {"pid": "alive"})
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    command, url, *args = sys.argv[1:]
    if command == "transfer":
        pause = float(args[3]) if len(args) > 3 else 0.0
        asyncio.run(transfer(url, args[0], int(args[1]), int(args[2]), pause))
    elif command == "batches":
        asyncio.run(batches(url, int(args[0])))
    elif command == "session":
        asyncio.run(session(url, args[0]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main()
