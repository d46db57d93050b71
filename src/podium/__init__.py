"""podium: orchestrate teams of AI agents, durably.

Everything is an agent; patterns are agents made of agents; every hop goes through one door
(`ctx.call`) where retries, timeouts, the journal and events live.
"""

from typing import TYPE_CHECKING, Any

from podium import errors as _errors
from podium.agents import Agent, FunctionAgent, LLMAgent, agent
from podium.agents.batch import Batch
from podium.agents.human import Decision, HumanAgent, HumanApproval, OnTimeout
from podium.agents.remote import RemoteAgent
from podium.core import targets as _targets
from podium.core.records import CallKind
from podium.core.tools import ToolContext, ToolSpec
from podium.errors import (
    BudgetExceededError,
    CircuitOpenError,
    GuardrailTrippedError,
    HandoffLoopError,
    HandoffTypeError,
    JournalUnavailable,
    LeaseLost,
    MaxHandoffsExceededError,
    MaxStepsExceededError,
    MaxTurnsExceededError,
    MCPConnectionError,
    MCPServerError,
    ModelError,
    ModelResponseError,
    NonDeterminismError,
    OutputTruncatedError,
    OutputTypeError,
    PingPongDetectedError,
    PlanError,
    PodiumError,
    PolicyDeniedError,
    PolicyError,
    ProviderError,
    QuorumNotMetError,
    RejectedError,
    RunError,
    RunLimitExceededError,
    RunTimeoutError,
    SpecError,
    StepError,
    StepTimeoutError,
    Suspended,
    SweepError,
    TargetError,
    TransientError,
    UnknownRunError,
    UsageError,
)
from podium.governance.guardrails import Guardrail, GuardResult, guardrail
from podium.governance.pii import Finding, find_sensitive, mask_sensitive
from podium.governance.policy import Grant, Policy
from podium.governance.privacy import Privacy
from podium.governance.taint import PinnedPlan, PlannedCall, planned
from podium.models import (
    Message,
    Model,
    ModelDelta,
    ModelDone,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    ScriptedModel,
    StreamingModel,
    ToolCall,
    resolve_model,
    tool_call,
)
from podium.models.prices import Price, Prices
from podium.models.tiers import Tiers
from podium.observability.cost import CostReport
from podium.observability.metrics import Metrics
from podium.observability.tracing import Tracing
from podium.runtime import (
    NO_RETRY,
    Event,
    Retry,
    RunContext,
    RunRecord,
    RunResult,
    RunStatus,
    RunStream,
    Runtime,
    StepRecord,
    StepStatus,
    Usage,
)
from podium.runtime.breaker import Breaker, LocalBoard
from podium.runtime.budget import Budget, BudgetAlert
from podium.runtime.cache import Cache
from podium.runtime.door import Call, Middleware
from podium.runtime.limits import RunLimits
from podium.runtime.replay import ReplayReport
from podium.runtime.waiting import WaitingRequest
from podium.tools import Tool, sanitiser, tool
from podium.tools.mcp import MCPServer

if TYPE_CHECKING:
    from podium.models.anthropic import AnthropicModel
    from podium.models.local import LocalModel
    from podium.models.openai import OpenAIModel
    from podium.patterns import (
        Adaptive,
        Assignment,
        ChatMessage,
        ChatReply,
        ChatResult,
        ChatTurn,
        Consensus,
        Graph,
        GroupChat,
        Handoff,
        HandoffInput,
        HandoffResult,
        HandoffTo,
        Instruction,
        Loop,
        LoopResult,
        LoopState,
        Magentic,
        MagenticResult,
        Merge,
        OnDeadlock,
        Parallel,
        ParallelResult,
        Plan,
        ProgressLedger,
        Review,
        RouteDecision,
        Router,
        Rule,
        Sequential,
        Speaker,
        Subtask,
        Supervisor,
        SupervisorResult,
        TaskLedger,
        WorkerErrors,
    )
    from podium.runtime.breaker_redis import RedisBoard
    from podium.spec.loader import load_yaml

__version__ = "0.1.0"


def _load_yaml_target(path: str, *, notes: list[Any] | None = None) -> Any:
    """A `.yaml` target: the spec loader, imported on first use (it is the heavier part)."""
    from podium.spec.loader import load_yaml

    return load_yaml(path, notes=notes)


# Target loading lives in the leaf core, which may not import the spec loader above it; the
# composition root plugs it in, and every import of podium runs this first.
_targets.register_file_loader((".yaml", ".yml"), _load_yaml_target)

_PATTERN_NAMES = (
    "Adaptive",
    "Assignment",
    "ChatMessage",
    "ChatReply",
    "ChatResult",
    "ChatTurn",
    "Consensus",
    "Graph",
    "GroupChat",
    "Handoff",
    "HandoffInput",
    "HandoffResult",
    "HandoffTo",
    "Instruction",
    "Loop",
    "LoopResult",
    "LoopState",
    "Magentic",
    "MagenticResult",
    "Merge",
    "OnDeadlock",
    "Parallel",
    "ParallelResult",
    "Plan",
    "ProgressLedger",
    "Review",
    "RouteDecision",
    "Router",
    "Rule",
    "Sequential",
    "Speaker",
    "Subtask",
    "Supervisor",
    "SupervisorResult",
    "TaskLedger",
    "WorkerErrors",
)

# Names whose modules are heavier (YAML, vendor SDKs): imported on first use, so that
# `import podium` stays fast.
_LAZY = {
    "load_yaml": "podium.spec.loader",
    "RedisBoard": "podium.runtime.breaker_redis",
    "AnthropicModel": "podium.models.anthropic",
    "LocalModel": "podium.models.local",
    "OpenAIModel": "podium.models.openai",
    # the patterns: a program that runs one agent, or only loads a store, does not pay for
    # the classes of every pattern (their YAML kinds register when podium.patterns loads)
    **dict.fromkeys(_PATTERN_NAMES, "podium.patterns"),
}


_old_name = _errors.renamed(
    "podium", [n for n, new in _errors.RENAMED.items() if new in globals()], depth=1
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        return _old_name(name)  # a renamed error (with a warning), else AttributeError
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Adaptive",
    "Agent",
    "AnthropicModel",
    "Assignment",
    "Batch",
    "Breaker",
    "Budget",
    "BudgetAlert",
    "BudgetExceededError",
    "Cache",
    "Call",
    "CallKind",
    "ChatMessage",
    "ChatReply",
    "ChatResult",
    "ChatTurn",
    "CircuitOpenError",
    "Consensus",
    "CostReport",
    "Decision",
    "Event",
    "Finding",
    "FunctionAgent",
    "Grant",
    "Graph",
    "GroupChat",
    "GuardResult",
    "Guardrail",
    "GuardrailTrippedError",
    "Handoff",
    "HandoffInput",
    "HandoffLoopError",
    "HandoffResult",
    "HandoffTo",
    "HandoffTypeError",
    "HumanAgent",
    "HumanApproval",
    "Instruction",
    "JournalUnavailable",
    "LLMAgent",
    "LeaseLost",
    "LocalBoard",
    "LocalModel",
    "Loop",
    "LoopResult",
    "LoopState",
    "MCPConnectionError",
    "MCPServer",
    "MCPServerError",
    "Magentic",
    "MagenticResult",
    "MaxHandoffsExceededError",
    "MaxStepsExceededError",
    "MaxTurnsExceededError",
    "Merge",
    "Message",
    "Metrics",
    "Middleware",
    "Model",
    "ModelDelta",
    "ModelDone",
    "ModelError",
    "ModelResponse",
    "ModelResponseError",
    "ModelSettings",
    "NO_RETRY",
    "NonDeterminismError",
    "OnDeadlock",
    "OnTimeout",
    "OpenAIModel",
    "OutputSchema",
    "OutputTruncatedError",
    "OutputTypeError",
    "Parallel",
    "ParallelResult",
    "PingPongDetectedError",
    "PinnedPlan",
    "Plan",
    "PlanError",
    "PlannedCall",
    "PodiumError",
    "Policy",
    "PolicyDeniedError",
    "PolicyError",
    "Price",
    "Prices",
    "Privacy",
    "ProgressLedger",
    "ProviderError",
    "QuorumNotMetError",
    "RedisBoard",
    "RejectedError",
    "RemoteAgent",
    "ReplayReport",
    "Retry",
    "Review",
    "RouteDecision",
    "Router",
    "Rule",
    "RunContext",
    "RunError",
    "RunLimitExceededError",
    "RunLimits",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "RunStream",
    "RunTimeoutError",
    "Runtime",
    "ScriptedModel",
    "Sequential",
    "Speaker",
    "SpecError",
    "StepError",
    "StepRecord",
    "StepStatus",
    "StepTimeoutError",
    "StreamingModel",
    "Subtask",
    "Supervisor",
    "SupervisorResult",
    "Suspended",
    "SweepError",
    "TargetError",
    "TaskLedger",
    "Tiers",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolSpec",
    "Tracing",
    "TransientError",
    "UnknownRunError",
    "Usage",
    "UsageError",
    "WaitingRequest",
    "WorkerErrors",
    "agent",
    "find_sensitive",
    "guardrail",
    "load_yaml",
    "mask_sensitive",
    "planned",
    "resolve_model",
    "sanitiser",
    "tool",
    "tool_call",
]


def __dir__() -> list[str]:
    """The public names, loaded or not yet (the patterns load on first use)."""
    return sorted({*globals(), *__all__})
