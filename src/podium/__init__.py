"""podium: orchestrate teams of AI agents, durably.

Everything is an agent; patterns are agents made of agents; every hop goes through one door
(`ctx.call`) where retries, timeouts, the journal and events live.
"""

from typing import TYPE_CHECKING, Any

from podium.agents import Agent, FunctionAgent, agent
from podium.errors import (
    HandoffTypeError,
    ModelError,
    ModelResponseError,
    PodiumError,
    ProviderError,
    RunError,
    SpecError,
    StepFailed,
    StepTimeout,
    Suspended,
    TargetError,
    TransientError,
    UnknownRunError,
    UsageError,
)
from podium.patterns import (
    Parallel,
    ParallelResult,
    QuorumNotMet,
    RouteDecision,
    Router,
    Rule,
    Sequential,
)
from podium.runtime import (
    NO_RETRY,
    Event,
    Retry,
    RunContext,
    RunRecord,
    RunResult,
    RunStatus,
    Runtime,
    StepRecord,
    StepStatus,
    Usage,
)

if TYPE_CHECKING:
    from podium.spec.loader import load_yaml

__version__ = "0.1.0"

# Names whose modules are heavier (YAML, vendor SDKs): imported on first use, so that
# `import podium` stays fast.
_LAZY = {
    "load_yaml": "podium.spec.loader",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "NO_RETRY",
    "Agent",
    "Event",
    "FunctionAgent",
    "HandoffTypeError",
    "ModelError",
    "ModelResponseError",
    "Parallel",
    "ParallelResult",
    "PodiumError",
    "ProviderError",
    "QuorumNotMet",
    "Retry",
    "RouteDecision",
    "Router",
    "Rule",
    "RunContext",
    "RunError",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "Runtime",
    "Sequential",
    "SpecError",
    "StepFailed",
    "StepRecord",
    "StepStatus",
    "StepTimeout",
    "Suspended",
    "TargetError",
    "TransientError",
    "UnknownRunError",
    "Usage",
    "UsageError",
    "agent",
    "load_yaml",
]
