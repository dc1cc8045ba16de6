"""The opt-in inline policy's rules (pure logic; the loader test shows it on a real library)."""

from __future__ import annotations

from plughost.runtime.native.inline import BLOCKED_S, MAX_DEMOTIONS, THREAD_SLACK_US, WINDOW, InlinePolicy


def test_off_without_a_budget() -> None:
    policy = InlinePolicy(0)
    for _ in range(100):
        policy.observe("m", 1e-6, 0)
    assert not policy.allows("m")


def test_promoted_after_warmup_and_demoted_by_slow_inline_runs() -> None:
    policy = InlinePolicy(50, warmup=4)
    for _ in range(3):
        policy.observe("m", 10e-6, 0)
    assert not policy.allows("m")
    policy.observe("m", (50 + THREAD_SLACK_US / 2) * 1e-6, 0)  # thread timing noise is tolerated
    assert policy.allows("m")
    policy.observe("m", 200e-6, 0)  # one noisy inline run does not demote it
    assert policy.allows("m")
    for demotion in range(MAX_DEMOTIONS):
        for _ in range(WINDOW * 4):  # inline runs that are consistently over the budget
            policy.observe("m", 80e-6, 0)
            if not policy.allows("m"):
                break
        assert not policy.allows("m")
        for _ in range(4):
            policy.observe("m", 10e-6, 0)
        assert policy.allows("m") is (demotion < MAX_DEMOTIONS - 1)


def test_a_callback_bans_at_once_and_mostly_slow_methods_stay_on_threads() -> None:
    policy = InlinePolicy(50, warmup=4)
    for _ in range(4):
        policy.observe("cb", 1e-6, 0)
    assert policy.allows("cb")
    policy.observe("cb", 1e-6, 1)
    for _ in range(10):
        policy.observe("cb", 1e-6, 0)
    assert not policy.allows("cb")
    for _ in range(8):
        policy.observe("slow", 5e-3, 0)
        policy.observe("slow", 1e-6, 0)
    assert not policy.allows("slow")  # half of its runs were slow


def test_one_blocking_run_demotes_at_once() -> None:
    policy = InlinePolicy(50, warmup=1)
    policy.observe("m", 1e-6, 0)
    assert policy.allows("m")
    policy.observe("m", 0.05, 0)  # a 50 ms stall is the scheduler …
    assert policy.allows("m")
    policy.observe("m", BLOCKED_S + 0.01, 0)  # … but a call this long blocked the loop
    assert not policy.allows("m")
