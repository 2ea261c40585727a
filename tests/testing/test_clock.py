"""tidal.testing's virtual clock and ready-order shuffle, on tidal's test loop.

These are tidal features with no asyncio counterpart, so no oracle: each
test states what real time would have given and checks virtual time gives
exactly that, fast.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import tidal
import tidal.testing
from tidal.testing import VirtualClock


def vrun(coro: Any, **kwargs: Any) -> Any:
    """Run *coro* on a new test loop with a fresh virtual clock (or the one given)."""
    clock = kwargs.pop("clock", None) or VirtualClock()
    return tidal.testing.run(coro, clock=clock, **kwargs)


def test_sleep_jumps_to_the_deadline() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return start, loop.time()

    t0 = time.perf_counter()
    start, end = vrun(main())
    assert time.perf_counter() - t0 < 1
    assert (start, end) == (0.0, 3600.0)


def test_tidal_sleep_and_call_later_jump_too() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = tidal.get_running_loop()
        seen: list[tuple[str, float]] = []
        loop.call_later(30, lambda: seen.append(("call_later", loop.time())))
        loop.call_at(10, lambda: seen.append(("call_at", loop.time())))
        await tidal.sleep(60)
        seen.append(("sleep", loop.time()))
        return seen

    assert vrun(main()) == [("call_at", 10.0), ("call_later", 30.0), ("sleep", 60.0)]


def test_tidal_api_timeouts_hit_their_virtual_deadlines() -> None:
    async def main() -> list[float]:
        loop = tidal.get_running_loop()
        hits: list[float] = []
        with pytest.raises(TimeoutError):
            await tidal.wait_for(tidal.sleep(100), 12.5)
        hits.append(loop.time())
        with pytest.raises(TimeoutError):
            async with tidal.timeout(7.5):
                await tidal.Event().wait()
        hits.append(loop.time())
        done, pending = await tidal.wait([tidal.create_task(tidal.sleep(50))], timeout=5)
        assert not done and len(pending) == 1
        hits.append(loop.time())
        async with tidal.TaskGroup() as tg:
            tg.create_task(tidal.sleep(30))
            tg.create_task(tidal.to_thread(time.sleep, 0.01))
        hits.append(loop.time())
        return hits

    hits = vrun(main())
    assert hits[:3] == [12.5, 20.0, 25.0]
    assert hits[3] == 55.0


def test_timers_fire_in_deadline_order_at_their_times() -> None:
    async def main() -> list[tuple[int, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[int, float]] = []
        for delay in (5, 1, 4, 2, 3):
            loop.call_later(delay, lambda d=delay: fired.append((d, loop.time())))
        await asyncio.sleep(10)
        return fired

    assert vrun(main()) == [(d, float(d)) for d in (1, 2, 3, 4, 5)]


def test_equal_deadlines_fire_in_scheduling_order() -> None:
    # In real time each "sleep(1)" of one turn has a later deadline than the
    # last; on virtual time they are equal and must keep that order.
    async def main() -> list[int]:
        order: list[int] = []

        async def worker(i: int) -> None:
            await asyncio.sleep(1)
            order.append(i)

        loop = asyncio.get_running_loop()
        for i in range(20, 25):
            loop.call_later(1, order.append, i)
        await asyncio.gather(*(worker(i) for i in range(20)))
        return order

    assert vrun(main()) == [*range(20, 25), *range(20)]


def test_time_call_at_and_timeout_at_agree() -> None:
    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 7.25
        fired = loop.create_future()
        loop.call_at(deadline, lambda: fired.set_result(loop.time()))
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.sleep(100)
        except TimeoutError:
            hit = loop.time()
        return deadline, await fired, hit

    deadline, fired, hit = vrun(main())
    assert fired == deadline and hit == deadline


def test_advance_moves_time_by_hand() -> None:
    clock = VirtualClock(autojump=False)

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        woke: list[float] = []

        async def sleeper() -> None:
            await asyncio.sleep(10)
            woke.append(loop.time())

        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)
        clock.advance(9.5)
        for _ in range(3):
            await asyncio.sleep(0)
        assert woke == []  # not due yet: without autojump time stands still
        clock.advance(0.5)
        await task
        return woke

    assert vrun(main(), clock=clock) == [10.0]
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_advance_from_another_thread_wakes_the_loop() -> None:
    clock = VirtualClock(autojump=False)

    async def main() -> float:
        threading.Timer(0.05, clock.advance, (60,)).start()
        await asyncio.sleep(60)
        return asyncio.get_running_loop().time()

    assert vrun(main(), clock=clock) == 60.0


def test_thread_pool_call_holds_the_clock() -> None:
    # A 0.2 s real call against a 5 s timer: the timer must not fire first.
    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        result = await asyncio.wait_for(asyncio.to_thread(time.sleep, 0.2), 5)
        return str(result), loop.time()

    result, now = vrun(main())
    assert result == "None"
    assert 0.15 < now < 5  # time followed real time while the call ran


def test_io_grace_lets_time_jump_past_silent_work() -> None:
    event = threading.Event()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(event.wait, 5), 60)
        event.set()
        return loop.time()

    t0 = time.perf_counter()
    assert vrun(main(), clock=VirtualClock(io_grace=0.02)) == 60.0
    assert time.perf_counter() - t0 < 2


def test_hold_follows_real_time() -> None:
    clock = VirtualClock()

    async def main() -> float:
        with clock.hold():
            await asyncio.sleep(0.05)
        return asyncio.get_running_loop().time()

    t0 = time.perf_counter()
    assert vrun(main(), clock=clock) == 0.05
    assert time.perf_counter() - t0 >= 0.045


def test_subprocess_holds_the_clock() -> None:
    async def main() -> tuple[bytes, float]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(0.2); print('done')",
            stdout=subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        return out, asyncio.get_running_loop().time()

    out, now = vrun(main())
    assert out.strip() == b"done"
    assert now < 30


def test_socket_to_another_thread_holds_the_clock() -> None:
    # The peer answers after 0.2 s of real time; a 10 s read timeout must not fire.
    a, b = socket.socketpair()
    threading.Timer(0.2, b.sendall, (b"late",)).start()

    async def main() -> bytes:
        reader, writer = await asyncio.open_connection(sock=a)
        try:
            return await asyncio.wait_for(reader.read(10), 10)
        finally:
            writer.close()

    try:
        assert vrun(main()) == b"late"
    finally:
        b.close()


def test_own_connection_does_not_hold_the_clock() -> None:
    # Both ends on this loop: nothing can arrive that the loop does not send.
    async def main() -> tuple[float, int]:
        loop = asyncio.get_running_loop()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(120)
            writer.write(b"hi")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await reader.read(2) == b"hi"
        writer.close()
        server.close()
        await server.wait_closed()
        return loop.time(), port

    t0 = time.perf_counter()
    now, _ = vrun(main())
    assert now == 120.0
    assert time.perf_counter() - t0 < 2


def test_unix_socket_connection_inside_the_loop(tmp_path: Any) -> None:
    path = str(tmp_path / "s")

    async def main() -> float:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(30)
            writer.write(b"x")
            writer.close()

        server = await asyncio.start_unix_server(handle, path)
        reader, writer = await asyncio.open_unix_connection(path)
        assert await reader.read(1) == b"x"
        writer.close()
        server.close()
        await server.wait_closed()
        return asyncio.get_running_loop().time()

    assert vrun(main()) == 30.0


def test_unconnected_udp_endpoint_does_not_hold_the_clock() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        try:
            await asyncio.sleep(300)  # a UDP server waiting for whoever may come
        finally:
            transport.close()
        return loop.time()

    t0 = time.perf_counter()
    assert vrun(main()) == 300.0
    assert time.perf_counter() - t0 < 2


def test_pipe_holds_the_clock() -> None:
    r, w = os.pipe()
    threading.Timer(0.1, os.write, (w, b"x")).start()

    async def main() -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", 0)
        )
        try:
            return await asyncio.wait_for(reader.read(1), 20), loop.time()
        finally:
            transport.close()

    try:
        data, now = vrun(main())
    finally:
        os.close(w)
    assert data == b"x" and now < 20


def test_clock_switches_keep_time_monotonic() -> None:
    loop = tidal.testing.new_event_loop()
    try:
        clock = VirtualClock()
        loop.run_until_complete(asyncio.sleep(0))
        before = loop.time()
        loop.set_clock(clock)  # a loop that ran: the clock continues from its time
        attached = clock.time()
        assert before <= attached < before + 1 and loop.clock is clock
        loop.run_until_complete(asyncio.sleep(1000))
        assert loop.time() == attached + 1000
        loop.set_clock(None)
        after = loop.time()
        assert after >= attached + 1000
        loop.run_until_complete(asyncio.sleep(0.01))
        assert loop.time() >= after + 0.01
        other = tidal.testing.new_event_loop()
        try:
            loop.set_clock(clock)
            with pytest.raises(RuntimeError):
                other.set_clock(clock)
        finally:
            other.close()
    finally:
        loop.close()


def test_new_loop_starts_at_the_clock_start() -> None:
    loop = tidal.testing.new_event_loop(clock=VirtualClock(start=100.0))
    try:
        assert loop.time() == 100.0
        assert loop.run_until_complete(_time_after(5)) == 105.0
    finally:
        loop.close()


async def _time_after(delay: float) -> float:
    await asyncio.sleep(delay)
    return asyncio.get_running_loop().time()


def test_real_time_by_default() -> None:
    loop = tidal.testing.new_event_loop()
    try:
        t0 = time.monotonic()
        assert abs(loop.time() - t0) < 0.5
        assert loop.clock is None and loop.shuffle_seed is None
    finally:
        loop.close()


# -- ready order ------------------------------------------------------------------


async def _wake_order(n: int) -> list[int]:
    order: list[int] = []
    event = asyncio.Event()

    async def waiter(i: int) -> None:
        await event.wait()
        order.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(n)]
    await asyncio.sleep(0)
    event.set()
    await asyncio.gather(*tasks)
    return order


def test_fifo_by_default() -> None:
    assert vrun(_wake_order(20)) == list(range(20))


def test_shuffle_is_seeded_and_replayable() -> None:
    first = tidal.testing.run(_wake_order(20), shuffle=1234)
    assert sorted(first) == list(range(20)) and first != list(range(20))
    assert tidal.testing.run(_wake_order(20), shuffle=1234) == first
    others = {tuple(tidal.testing.run(_wake_order(20), shuffle=s)) for s in range(5)}
    assert len(others) > 1


def test_shuffle_keeps_callbacks_in_order() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        seen: list[int] = []
        for i in range(30):
            loop.call_soon(seen.append, i)
        fut = loop.create_future()
        for i in range(30, 40):
            fut.add_done_callback(lambda f, i=i: seen.append(i))
        fut.set_result(None)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return seen

    assert tidal.testing.run(main(), shuffle=99) == list(range(40))


def test_policy_makes_test_loops() -> None:
    policy = tidal.testing.EventLoopPolicy()
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, tidal.testing.EventLoop)
        assert isinstance(loop, tidal.EventLoop)
    finally:
        loop.close()
