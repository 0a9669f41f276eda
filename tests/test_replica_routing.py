"""The engine's router (econash/engine/endpoints.py): least outstanding requests over replicas, a
cool-down that takes a failing replica out and grows while it keeps failing, one probe when it
comes back, and a single endpoint that behaves as the plain connection limit always did."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from econash.engine.endpoints import Endpoint, Outcome, Router, Slot


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replicas(*slots: int) -> list[tuple[str, Endpoint]]:
    return [(name, Endpoint(label=name, slots=n)) for name, n in zip("abcdef", slots)]


async def take(router: Router[str], choices, count: int) -> list[Slot[str]]:
    return [await asyncio.wait_for(router.acquire(choices), 1.0) for _ in range(count)]


def spread(slots: list[Slot[str]]) -> Counter[str]:
    return Counter(slot.choice for slot in slots)


def test_each_call_goes_to_the_replica_with_fewest_calls_in_flight():
    async def go():
        router: Router[str] = Router()
        choices = replicas(4, 4, 4)
        held = await take(router, choices, 6)
        assert spread(held) == {"a": 2, "b": 2, "c": 2}
        router.release(next(s for s in held if s.choice == "b"), Outcome.OK)
        (after,) = await take(router, choices, 1)
        assert after.choice == "b"  # the only replica with one call in flight
    asyncio.run(go())


def test_calls_one_after_another_spread_evenly():
    async def go():
        router: Router[str] = Router()
        choices = replicas(4, 4, 4)
        seen = []
        for _ in range(9):
            (slot,) = await take(router, choices, 1)
            seen.append(slot.choice)
            router.release(slot, Outcome.OK)
        assert Counter(seen) == {"a": 3, "b": 3, "c": 3}
    asyncio.run(go())


def test_a_failing_replica_cools_down_longer_each_time_and_comes_back_with_one_probe():
    async def go():
        clock = Clock()
        router: Router[str] = Router(cooldown_s=2.0, max_cooldown_s=5.0, clock=clock)
        choices = replicas(4, 4)
        a, b = (endpoint for _, endpoint in choices)
        (first,) = await take(router, choices, 1)
        assert first.choice == "a"
        router.release(first, Outcome.FAILED)
        assert a.out_until == clock.now + 2.0
        held = await take(router, choices, 4)
        assert spread(held) == {"b": 4}  # out for its cool-down: every call goes elsewhere
        for slot in held:
            router.release(slot, Outcome.OK)
        clock.now += 2.5
        probe, other = await take(router, choices, 2)
        assert (probe.choice, other.choice) == ("a", "b")
        more = await take(router, choices, 2)
        assert spread(more) == {"b": 2}  # one probe at a time until a call succeeds there
        router.release(probe, Outcome.FAILED)
        assert a.out_until == clock.now + 4.0  # the second failure in a row: twice as long
        clock.now += 4.5
        (probe,) = await take(router, choices, 1)
        router.release(probe, Outcome.FAILED)
        assert a.out_until == clock.now + 5.0  # capped at max_cooldown_s
        clock.now += 5.5
        (probe,) = await take(router, choices, 1)
        router.release(probe, Outcome.OK)
        assert (a.failures_in_row, a.limit()) == (0, 4)  # back at full slots
    asyncio.run(go())


def test_calls_already_in_flight_when_a_replica_is_taken_out_do_not_lengthen_its_cool_down():
    async def go():
        clock = Clock()
        router: Router[str] = Router(cooldown_s=2.0, clock=clock)
        choices = replicas(4, 4)
        held = [slot for slot in await take(router, choices, 4) if slot.choice == "a"]
        assert len(held) == 2
        clock.now += 0.1
        for slot in held:  # a killed server: both calls in flight fail at once
            router.release(slot, Outcome.FAILED)
        assert choices[0][1].failures_in_row == 1 and choices[0][1].out_until == clock.now + 2.0
    asyncio.run(go())


def test_fatal_errors_and_cancelled_calls_say_nothing_about_the_server():
    async def go():
        router: Router[str] = Router()
        choices = replicas(4, 4)
        (slot,) = await take(router, choices, 1)
        router.release(slot, Outcome.NEUTRAL)
        assert choices[0][1].failures_in_row == 0 and choices[0][1].out_until == 0.0
    asyncio.run(go())


def test_a_single_endpoint_is_a_plain_connection_limit():
    async def go():
        clock = Clock()
        router: Router[str] = Router(cooldown_s=30.0, clock=clock)
        choices = replicas(2)
        held = await take(router, choices, 2)
        router.release(held[0], Outcome.FAILED)
        # nothing else to choose from: no cool-down, no probe limit, both slots at once
        again = await take(router, choices, 1)
        assert [s.choice for s in again] == ["a"] and choices[0][1].in_flight == 2
        waiting = asyncio.ensure_future(router.acquire(choices))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # the third call waits for a slot
        router.release(held[1], Outcome.OK)
        assert (await asyncio.wait_for(waiting, 1.0)).choice == "a"
    asyncio.run(go())


def test_when_every_replica_is_out_calls_go_one_at_a_time_to_the_one_back_soonest():
    async def go():
        clock = Clock()
        router: Router[str] = Router(cooldown_s=2.0, clock=clock)
        choices = replicas(4, 4)
        first = await take(router, choices, 2)
        router.release(first[1], Outcome.FAILED)  # b out until +2
        clock.now += 1.0
        router.release(first[0], Outcome.FAILED)  # a out until +3
        (probe,) = await take(router, choices, 1)
        assert probe.choice == "b"
        waiting = asyncio.ensure_future(router.acquire(choices))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        router.release(probe, Outcome.OK)  # b answered: back in service
        assert (await asyncio.wait_for(waiting, 1.0)).choice == "b"
    asyncio.run(go())


def test_a_waiting_call_gets_a_replica_the_moment_its_cool_down_ends():
    async def go():
        router: Router[str] = Router(cooldown_s=0.05)
        choices = replicas(1, 1)
        a_call, b_call = await take(router, choices, 2)
        router.release(a_call, Outcome.FAILED)  # a out for 50 ms, b busy
        waiting = asyncio.ensure_future(router.acquire(choices))
        slot = await asyncio.wait_for(waiting, 1.0)  # no call released b: the cool-down's end served it
        assert slot.choice == "a"
        router.release(b_call, Outcome.OK)
    asyncio.run(go())


def test_waiting_calls_are_served_in_order_and_a_cancelled_one_leaves_the_line():
    async def go():
        router: Router[str] = Router()
        choices = replicas(1)
        (held,) = await take(router, choices, 1)
        first = asyncio.ensure_future(router.acquire(choices))
        second = asyncio.ensure_future(router.acquire(choices))
        third = asyncio.ensure_future(router.acquire(choices))
        await asyncio.sleep(0.01)
        first.cancel()
        await asyncio.sleep(0.01)
        router.release(held, Outcome.OK)
        slot = await asyncio.wait_for(second, 1.0)
        assert not third.done()
        router.release(slot, Outcome.OK)
        router.release(await asyncio.wait_for(third, 1.0), Outcome.OK)
        assert choices[0][1].in_flight == 0
        with pytest.raises(asyncio.CancelledError):
            await first
    asyncio.run(go())


def test_a_call_whose_server_is_busy_does_not_hold_up_one_that_can_go_elsewhere():
    async def go():
        router: Router[str] = Router()
        a, b = replicas(1, 1)
        held_a, held_b = await take(router, [a], 1), await take(router, [b], 1)
        first = asyncio.ensure_future(router.acquire([a]))  # first in line, for a busy server
        second = asyncio.ensure_future(router.acquire([b]))
        await asyncio.sleep(0.01)
        router.release(held_b[0], Outcome.OK)
        assert (await asyncio.wait_for(second, 1.0)).choice == "b"
        assert not first.done()
        router.release(held_a[0], Outcome.OK)
        assert (await asyncio.wait_for(first, 1.0)).choice == "a"
    asyncio.run(go())
