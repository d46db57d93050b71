"""Issue 4's fault soak: 1,000 runs of an LLMAgent whose model fails 30% of calls and hangs
on 5% (cut by a 0.02 s timeout), with retries, a model breaker and a fallback model; a burst
of failures in the middle makes the breaker open, probe and close. The flow is
tests/soak_flow.py (shared with bench/reliability.py, which runs a bigger one)."""

from __future__ import annotations

from itertools import pairwise

import pytest

from soak_flow import soak

pytestmark = pytest.mark.slow  # a thousand runs


async def test_a_thousand_runs_through_faults_complete_and_the_breaker_cycles() -> None:
    r = await soak(1000, seed=11)
    print(f"\nfault soak: { {k: v for k, v in r.items() if k != 'transitions'} }")
    assert r["completion_rate"] >= 0.999
    # the faults really happened, and were retried or sent to the fallback
    assert r["injected_errors"] > 0.2 * r["model_calls"] and r["injected_hangs"] > 0
    assert r["retries"] > 0 and r["fallbacks_used"] > 0
    # the breaker opened during the burst, probed when each cool-down was over, and closed
    assert r["breaker_opened"] >= 1 and r["breaker_half_open"] >= 1 and r["breaker_closed"] >= 1
    assert r["breaker_rejected"] > 0  # while open, calls failed fast to the fallback
    t = r["transitions"]
    assert t[0] == "opened:model:primary" and t[-1] == "closed:model:primary"
    for before, after in pairwise(t):  # open -> half-open -> open | closed
        if before.startswith("opened"):
            assert after.startswith("half_open")
        if before.startswith("half_open"):
            assert after.split(":")[0] in ("opened", "closed")
    assert r["breaker_final_state"] == "closed"
