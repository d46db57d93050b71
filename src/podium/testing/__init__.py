"""Fault injection for tests: models, tools and agents that fail, hang or answer badly on a
seeded schedule, and provider errors by name.

    from podium.testing import FaultyModel, flaky_tool, rate_limited

    model = FaultyModel(ScriptedModel.echo(), fail_rate=0.3, hang_rate=0.05, seed=7)
    model.stats            # FaultStats(calls=..., errors=..., hangs=..., malformed=...)
    model.faults           # [Fault(call=2, kind='error'), ...]

Everything is deterministic under its seed: each wrapper owns its `random.Random(seed)`.

`FakeClock` is time that moves only when a test advances it: hand it to `Runtime(clock=...)`
and test deadlines, cool-downs, backoff and leases without sleeping.

`canaries(n)` makes valid, unique PII and secret values of every kind to seed into a run,
and `leaks(text, seeded)` says which of them show raw in a text.

`LlamaServer` starts a real OpenAI-compatible server (llama.cpp's, with a small packaged
model) on loopback, for tests that need the real wire.
"""

from podium.testing.canaries import Canary, canaries, leaks
from podium.testing.clock import FakeClock
from podium.testing.faults import (
    Chaos,
    ErrorSpec,
    FailFirst,
    FailOnce,
    Fault,
    FaultKind,
    FaultStats,
    Rates,
    Schedule,
    auth_error,
    connection_reset,
    malformed_output,
    rate_limited,
    server_error,
)
from podium.testing.injection import compromised_model, inject, parse_injection
from podium.testing.llama_server import LlamaServer
from podium.testing.wrappers import (
    FaultyModel,
    FlakyAgent,
    FlakyTool,
    fail_first,
    flaky_agent,
    flaky_tool,
)

__all__ = [
    "Canary",
    "Chaos",
    "ErrorSpec",
    "FakeClock",
    "FailFirst",
    "FailOnce",
    "Fault",
    "FaultKind",
    "FaultStats",
    "FaultyModel",
    "FlakyAgent",
    "FlakyTool",
    "LlamaServer",
    "Rates",
    "Schedule",
    "auth_error",
    "canaries",
    "compromised_model",
    "connection_reset",
    "fail_first",
    "flaky_agent",
    "flaky_tool",
    "inject",
    "leaks",
    "malformed_output",
    "parse_injection",
    "rate_limited",
    "server_error",
]
