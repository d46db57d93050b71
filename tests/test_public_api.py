"""The public API is what `podium/__init__.py` exports; this pins it, so a change is deliberate."""

from __future__ import annotations

import subprocess
import sys

import podium

EXPECTED = [
    "Adaptive",
    "Agent",
    "AnthropicModel",
    "Batch",
    "Breaker",
    "Budget",
    "BudgetAlert",
    "BudgetExceededError",
    "Cache",
    "ChatMessage",
    "ChatResult",
    "ChatTurn",
    "CircuitOpenError",
    "CostReport",
    "Decision",
    "Event",
    "FunctionAgent",
    "Graph",
    "GroupChat",
    "Handoff",
    "HandoffLoopError",
    "HandoffResult",
    "HandoffTo",
    "HandoffTypeError",
    "HumanAgent",
    "HumanApproval",
    "JournalUnavailable",
    "LLMAgent",
    "LeaseLost",
    "LocalBoard",
    "LocalModel",
    "Loop",
    "LoopResult",
    "LoopState",
    "Magentic",
    "MagenticResult",
    "MaxHandoffsExceededError",
    "MaxStepsExceededError",
    "MaxTurnsExceededError",
    "Message",
    "Model",
    "ModelDelta",
    "ModelDone",
    "ModelError",
    "ModelResponse",
    "ModelResponseError",
    "ModelSettings",
    "NO_RETRY",
    "OpenAIModel",
    "OutputSchema",
    "OutputTruncatedError",
    "OutputTypeError",
    "Parallel",
    "ParallelResult",
    "PingPongDetectedError",
    "Plan",
    "PlanError",
    "PodiumError",
    "PolicyDeniedError",
    "Price",
    "Prices",
    "ProgressLedger",
    "ProviderError",
    "QuorumNotMetError",
    "RedisBoard",
    "RejectedError",
    "Retry",
    "Review",
    "RouteDecision",
    "Router",
    "Rule",
    "RunContext",
    "RunError",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "RunStream",
    "Runtime",
    "ScriptedModel",
    "Sequential",
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
    "TransientError",
    "UnknownRunError",
    "Usage",
    "UsageError",
    "WaitingRequest",
    "agent",
    "load_yaml",
    "resolve_model",
    "tool",
    "tool_call",
]


def test_exported_names_are_pinned_and_sorted() -> None:
    assert podium.__all__ == EXPECTED
    assert sorted(EXPECTED, key=lambda n: (n[0].islower(), n)) == EXPECTED


def test_every_exported_name_resolves() -> None:
    missing = [n for n in podium.__all__ if getattr(podium, n, None) is None]
    assert missing == []


def test_import_is_light() -> None:
    """`import podium` pulls in no vendor SDK, database driver or YAML parser."""
    code = (
        "import sys, podium; heavy = ('openai', 'anthropic', 'llama_cpp', 'asyncpg', 'redis', "
        "'yaml', 'typer', 'torch'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
