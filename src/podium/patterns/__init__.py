"""Patterns: agents made of agents. Each only decides who runs next, with what; retries, the
journal, events and limits come from the door."""

from podium.errors import (
    HandoffLoopError,
    MaxHandoffsExceededError,
    MaxStepsExceededError,
    PingPongDetectedError,
    PlanError,
    QuorumNotMetError,
    renamed,
)
from podium.patterns.adaptive import (
    Adaptive,
    AdaptiveChoice,
    MemoryOutcomes,
    OutcomeStats,
    OutcomeStore,
    StoreOutcomes,
    StrategyChoice,
)
from podium.patterns.graph import Graph
from podium.patterns.groupchat import (
    ChatMessage,
    ChatReply,
    ChatResult,
    ChatTurn,
    Consensus,
    DeadlockReport,
    GroupChat,
    OnDeadlock,
    Speaker,
    SpeakerChoice,
    SpeakerRequest,
)
from podium.patterns.handoff import (
    Handoff,
    HandoffInput,
    HandoffResult,
    HandoffTo,
    Hop,
    TransferTool,
)
from podium.patterns.loop import Loop, LoopResult, LoopState
from podium.patterns.magentic import (
    AnswerRequest,
    Instruction,
    LedgerRequest,
    Magentic,
    MagenticResult,
    ProgressLedger,
    ProgressRequest,
    TaskLedger,
    Turn,
)
from podium.patterns.parallel import Merge, Parallel, ParallelResult
from podium.patterns.router import RouteDecision, Router, Rule
from podium.patterns.sequential import Sequential
from podium.patterns.supervisor import (
    Assignment,
    Plan,
    PlanRequest,
    Review,
    ReviewRequest,
    Subtask,
    Supervisor,
    SupervisorResult,
    SynthesisRequest,
    WorkerErrors,
)

__all__ = [
    "Adaptive",
    "AdaptiveChoice",
    "AnswerRequest",
    "Assignment",
    "ChatMessage",
    "ChatReply",
    "ChatResult",
    "ChatTurn",
    "Consensus",
    "DeadlockReport",
    "Graph",
    "GroupChat",
    "Handoff",
    "HandoffInput",
    "HandoffLoopError",
    "HandoffResult",
    "HandoffTo",
    "Hop",
    "Instruction",
    "LedgerRequest",
    "Loop",
    "LoopResult",
    "LoopState",
    "Magentic",
    "MagenticResult",
    "MaxHandoffsExceededError",
    "MaxStepsExceededError",
    "MemoryOutcomes",
    "Merge",
    "OnDeadlock",
    "OutcomeStats",
    "OutcomeStore",
    "Parallel",
    "ParallelResult",
    "PingPongDetectedError",
    "Plan",
    "PlanError",
    "PlanRequest",
    "ProgressLedger",
    "ProgressRequest",
    "QuorumNotMetError",
    "Review",
    "ReviewRequest",
    "RouteDecision",
    "Router",
    "Rule",
    "Sequential",
    "Speaker",
    "SpeakerChoice",
    "SpeakerRequest",
    "StoreOutcomes",
    "StrategyChoice",
    "Subtask",
    "Supervisor",
    "SupervisorResult",
    "SynthesisRequest",
    "TaskLedger",
    "TransferTool",
    "Turn",
    "WorkerErrors",
]

__getattr__ = renamed(
    __name__, ["MaxHandoffsExceeded", "MaxStepsExceeded", "PingPongDetected", "QuorumNotMet"]
)
