"""`vlcp.tasks.stop_tasks`, the one way vlcp cancels tasks and waits for them.

The version `vlcp run` and `vlcp demo` used before swallowed every BaseException while it
waited, the caller's own cancellation and Ctrl-C included; others dropped the errors of
the tasks they stopped. These tests pin the contract on a real event loop.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from vlcp.tasks import stop_tasks


async def _forever() -> None:
    await asyncio.Event().wait()


async def _started(*tasks: asyncio.Task[None]) -> None:
    """Let new tasks reach their first await, so a cancel lands inside them."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not any(task.done() for task in tasks)


async def test_every_task_is_cancelled_and_waited_for() -> None:
    tasks = [asyncio.create_task(_forever()) for _ in range(3)]
    await _started(*tasks)
    assert await stop_tasks(tasks) is True
    assert all(task.cancelled() for task in tasks)


async def _fails_when_cancelled() -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise ValueError("cleanup went wrong") from None


async def test_the_callers_cancellation_propagates_and_the_children_end_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    in_cleanup = asyncio.Event()
    release = asyncio.Event()

    async def slow_cleanup() -> None:
        try:
            await asyncio.Event().wait()
        finally:  # keeps stop_tasks waiting until released
            in_cleanup.set()
            await release.wait()

    slow = asyncio.create_task(slow_cleanup())
    plain = asyncio.create_task(_forever())
    failing = asyncio.create_task(_fails_when_cancelled(), name="failing")
    await _started(slow, plain, failing)
    stopping = asyncio.create_task(stop_tasks([slow, plain, failing]))
    await in_cleanup.wait()
    with caplog.at_level(logging.ERROR, logger="vlcp.tasks"):
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping
        assert stopping.cancelled()
        assert plain.cancelled()
        assert not slow.done()  # cancelled, still cleaning up on its own
        release.set()
        await asyncio.wait([slow])
        assert slow.cancelled()
    assert "cleanup went wrong" in caplog.text  # still logged, though nobody waited


async def test_a_task_that_fails_is_logged_and_the_others_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = asyncio.create_task(_fails_when_cancelled(), name="failing")
    others = [asyncio.create_task(_forever()) for _ in range(2)]
    await _started(failing, *others)
    with caplog.at_level(logging.ERROR, logger="vlcp.tasks"):
        assert await stop_tasks([others[0], failing, others[1]]) is True
    assert all(task.cancelled() for task in others)
    assert isinstance(failing.exception(), ValueError)
    [record] = caplog.records
    assert "failing" in record.getMessage() and "cleanup went wrong" in record.getMessage()
    assert record.exc_info is not None  # with its traceback


async def test_a_task_that_failed_before_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise RuntimeError("early")

    failed = asyncio.create_task(fails(), name="failed early")
    await asyncio.wait([failed])
    with caplog.at_level(logging.ERROR, logger="vlcp.tasks"):
        assert await stop_tasks([failed]) is True
    assert "failed early" in caplog.text and "early" in caplog.text


async def test_a_task_that_ignores_one_cancellation_is_waited_for_not_cancelled_again() -> None:
    """Catching CancelledError to clean up (or losing it) is waited for: a second
    cancellation would cut that cleanup short. Only `recancel` cancels again."""
    caught = asyncio.Event()
    release = asyncio.Event()
    cancellations = 0

    async def ignores_one() -> str:
        nonlocal cancellations
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancellations += 1
            caught.set()
        await release.wait()
        return "finished its work"

    task = asyncio.create_task(ignores_one())
    await _started(task)
    stopping = asyncio.create_task(stop_tasks([task]))
    await caught.wait()
    await _started(stopping)  # stop_tasks is still waiting
    release.set()
    assert await stopping is True
    assert task.result() == "finished its work" and cancellations == 1


async def test_recancel_cancels_a_task_again_until_it_ends() -> None:
    cancellations = 0

    async def ignores_two() -> None:
        nonlocal cancellations
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancellations += 1
                if cancellations == 3:
                    raise

    task = asyncio.create_task(ignores_two())
    await _started(task)
    assert await stop_tasks([task], recancel=0.01, timeout=10) is True
    assert task.cancelled() and cancellations == 3


async def test_a_task_still_running_after_the_timeout_is_left_behind_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()
            raise ValueError("failed after being left behind") from None

    task = asyncio.create_task(stubborn(), name="stubborn")
    await _started(task)
    with caplog.at_level(logging.WARNING, logger="vlcp.tasks"):
        assert await stop_tasks([task], timeout=0.05) is False
        assert "left behind: stubborn" in caplog.text
        assert not task.done()
        release.set()
        await asyncio.wait([task])  # stop_tasks' done callback ran before this returns
    assert "failed after being left behind" in caplog.text


async def test_a_tasks_keyboard_interrupt_or_system_exit_is_raised_after_all_ended() -> None:
    for interrupt in (KeyboardInterrupt, SystemExit):
        # A future: a task raising these would stop the event loop itself.
        interrupted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        interrupted.set_exception(interrupt())
        other = asyncio.create_task(_forever())
        await _started(other)
        with pytest.raises(interrupt):
            await stop_tasks([interrupted, other])
        assert other.cancelled()


async def test_nothing_to_stop() -> None:
    assert await stop_tasks([]) is True
