"""podium: orchestrate teams of AI agents, durably.

Everything is an agent; patterns are agents made of agents; every hop goes through one door
(`ctx.call`) where retries, timeouts, the journal and events live.
"""

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
from podium.spec.loader import load_yaml

__version__ = "0.1.0"

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
