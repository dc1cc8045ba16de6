"""A handle that keeps its calls' deadline itself (a worker's lane, a gRPC deadline): one deadline per call."""

from __future__ import annotations

import asyncio

from plughost.guard import Guard
from plughost.sdk.call import TIMED_OUT, Call, Outcome
from plughost.sdk.deadlines import CallDeadlines


class KeepsItsDeadline:
    """Answers each call after `answer_after_s`, or `timed_out` once `call_deadline_s` passes, as a worker does."""

    def __init__(self, call_deadline_s: float, answer_after_s: float | None, *, keeps_s: float | None = None) -> None:
        self.call_deadline_s = call_deadline_s  # what it declares …
        self.keeps_s = call_deadline_s if keeps_s is None else keeps_s  # … and what it keeps
        self.answer_after_s = answer_after_s
        self.calls = 0

    async def call(self, call: Call) -> Outcome:
        self.calls += 1
        answered = asyncio.Event()
        if self.answer_after_s is not None:
            asyncio.get_running_loop().call_later(self.answer_after_s, answered.set)
        try:
            await asyncio.wait_for(answered.wait(), self.keeps_s)
        except TimeoutError:
            return Outcome.failed(TIMED_OUT, f"passed its deadline of {self.keeps_s:g} s")
        return Outcome("done")


class Prompting:
    """A bot whose calls can prompt the user: its deadlines stop while a person is asked."""

    def __init__(self) -> None:
        self.deadlines = CallDeadlines()


async def test_the_handles_own_deadline_ends_a_call_when_it_is_the_earlier_one() -> None:
    handle = KeepsItsDeadline(call_deadline_s=0.05, answer_after_s=None)
    outcome = await Guard().call("p", handle, Call("h"), timeout=30)
    assert outcome.error is not None and outcome.error.code == TIMED_OUT
    assert "passed its deadline of 0.05 s" in outcome.error.message  # the handle's, not the guard's


async def test_the_guard_keeps_its_own_limit_when_it_is_shorter_than_the_handles() -> None:
    handle = KeepsItsDeadline(call_deadline_s=30, answer_after_s=None)
    outcome = await asyncio.wait_for(Guard().call("p", handle, Call("h"), timeout=0.05), 10)
    assert outcome.error is not None and outcome.error.code == TIMED_OUT
    assert outcome.error.message == "timed out after 0.05 s"


async def test_a_call_that_can_prompt_keeps_the_guards_pausable_deadline() -> None:
    """The handle's clock cannot be stopped while a person is asked, the guard's can: for a call
    whose bot can prompt, the guard arms its own timeout even when the handle declares an earlier one."""
    handle = KeepsItsDeadline(call_deadline_s=0.01, answer_after_s=None, keeps_s=30)  # only the guard can end it
    outcome = await asyncio.wait_for(Guard().call("p", handle, Call("h", bot=Prompting()), timeout=0.05), 10)
    assert outcome.error is not None and outcome.error.message == "timed out after 0.05 s"


async def test_an_answer_within_the_handles_deadline_is_a_success_and_counted() -> None:
    guard = Guard()
    handle = KeepsItsDeadline(call_deadline_s=5, answer_after_s=0)
    outcome = await guard.call("p", handle, Call("h"), timeout=5)
    assert outcome == Outcome("done")
    assert guard.metrics("p")["h"].snapshot()["calls"] == 1


async def test_an_answer_after_the_limit_is_a_timeout_even_when_the_handle_keeps_the_deadline() -> None:
    """A handle (a remote at its gRPC deadline) may answer just past the limit: a late result is never a success."""
    handle = KeepsItsDeadline(call_deadline_s=0.05, answer_after_s=0.2, keeps_s=30)
    outcome = await asyncio.wait_for(Guard().call("p", handle, Call("h"), timeout=0.05), 10)
    assert outcome.error is not None and outcome.error.code == TIMED_OUT
    assert outcome.error.message.startswith("timed out after 0.05 s")
