"""podium: orchestrate teams of AI agents, durably.

Everything is an agent; patterns are agents made of agents; every hop goes through one door
(`ctx.call`) where retries, timeouts, the journal and events live.
"""

from typing import TYPE_CHECKING, Any

from podium.agents import Agent, FunctionAgent, LLMAgent, agent
from podium.agents.human import Decision, HumanAgent, HumanApproval
from podium.errors import (
    HandoffTypeError,
    MaxTurnsExceeded,
    ModelError,
    ModelResponseError,
    PodiumError,
    ProviderError,
    Rejected,
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
from podium.models import (
    Message,
    Model,
    ModelResponse,
    ModelSettings,
    OpenAIModel,
    OutputSchema,
    ScriptedModel,
    ToolCall,
    ToolSpec,
    resolve_model,
    tool_call,
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
from podium.tools import Tool, ToolContext, tool

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
    "Agent",
    "Decision",
    "Event",
    "FunctionAgent",
    "HandoffTypeError",
    "HumanAgent",
    "HumanApproval",
    "LLMAgent",
    "MaxTurnsExceeded",
    "Message",
    "Model",
    "ModelError",
    "ModelResponse",
    "ModelResponseError",
    "ModelSettings",
    "NO_RETRY",
    "OpenAIModel",
    "OutputSchema",
    "Parallel",
    "ParallelResult",
    "PodiumError",
    "ProviderError",
    "QuorumNotMet",
    "Rejected",
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
    "ScriptedModel",
    "Sequential",
    "SpecError",
    "StepFailed",
    "StepRecord",
    "StepStatus",
    "StepTimeout",
    "Suspended",
    "TargetError",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolSpec",
    "TransientError",
    "UnknownRunError",
    "Usage",
    "UsageError",
    "agent",
    "load_yaml",
    "resolve_model",
    "tool",
    "tool_call",
]
