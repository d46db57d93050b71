"""The public API is what `podium/__init__.py` exports; this pins it, so a change is deliberate."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import podium

EXPECTED = [
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


def _options(method: object) -> dict[str, tuple[object, object]]:
    """A method's parameters after `self`, by name: (kind, default); annotations are strings
    under `from __future__ import annotations`, so they are compared too."""
    params = list(inspect.signature(method).parameters.values())[1:]  # type: ignore[arg-type]
    return {p.name: (p.kind, p.default, p.annotation) for p in params}  # type: ignore[misc]


@pytest.mark.parametrize(
    ("reference", "others"),
    [
        ("run", ["run_sync", "stream"]),
        ("resume", ["resume_sync", "stream_resume"]),
    ],
)
def test_the_ways_to_run_take_the_same_options(reference: str, others: list[str]) -> None:
    """`run_sync` and `stream` take exactly what `run` takes (and the resume family what
    `resume` takes), with the same defaults: an option added to one must reach the others."""
    want = _options(getattr(podium.Runtime, reference))
    for name in others:
        assert _options(getattr(podium.Runtime, name)) == want, name


def test_run_and_resume_share_the_run_options() -> None:
    run, resume = _options(podium.Runtime.run), _options(podium.Runtime.resume)
    shared = {"retry", "deadline", "budget", "max_steps", "max_journal_bytes"}
    assert {k: run[k] for k in shared} == {k: resume[k] for k in shared}
    submit = _options(podium.Runtime.submit)
    # A queued run is started by a worker's runtime, whose retry policy applies; the budget
    # and the limits are stored with the run.
    assert set(run) - set(submit) == {"retry"}
    assert all(submit[k] == run[k] for k in submit)


def test_run_sync_passes_every_option_on() -> None:
    rt = podium.Runtime("memory://")
    seen: dict[str, object] = {}

    async def fake_run(agent: object, input: object = None, **options: object) -> str:
        seen.update(options)
        return "ok"

    rt.run = fake_run  # type: ignore[method-assign]
    options = {
        "run_id": "r1",
        "target": "m:o",
        "retry": podium.NO_RETRY,
        "deadline": 3.0,
        "budget": podium.Budget(tokens=10),
        "max_steps": 50,
        "max_journal_bytes": 1000,
    }
    assert rt.run_sync(object(), 1, **options) == "ok"  # type: ignore[arg-type]
    assert seen == options
