"""The runtime: `Runtime`, `RunContext` and the door every hop goes through."""

from podium.core.records import Event, RunRecord, RunStatus, StepRecord, StepStatus, Usage
from podium.runtime.context import RunContext, RunState
from podium.runtime.policies import DEFAULT_RETRY, NO_RETRY, Retry
from podium.runtime.runtime import RunResult, Runtime
from podium.runtime.stream import RunStream

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "Event",
    "Retry",
    "RunContext",
    "RunRecord",
    "RunResult",
    "RunState",
    "RunStatus",
    "RunStream",
    "Runtime",
    "StepRecord",
    "StepStatus",
    "Usage",
]
