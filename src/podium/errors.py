"""Every error podium raises, in one tree, and the signals that are not failures.

    PodiumError
    ├── UsageError                     you misused the API or gave bad input; never retried
    │   ├── SpecError                  a malformed workflow spec (YAML or Python)
    │   │   └── SpecProblemsError      ... with its problems as data, one by one
    │   ├── PolicyError                a malformed policy; names the field
    │   ├── TargetError                a `module:object` or file target that cannot be loaded
    │   ├── UnknownRunError            no run with that id in the store
    │   └── ScriptExhaustedError       a `ScriptedModel` was asked more than its script holds
    ├── SweepError                     `sweep` could not resume some overdue runs (it did
    │                                  the rest)
    └── RunError                       something failed while a run was executing
        ├── HandoffTypeError           a value crossing the door has the wrong type
        ├── OutputTypeError            an agent returned a value that is not its declared type
        ├── StepError                  a step failed for good (after retries); names agent and
        │                              step
        ├── NonDeterminismError        a replay found the code deciding differently from its
        │                              journal (`podium replay`); names the step
        ├── MaxTurnsExceededError      an LLMAgent's tool loop ran past its bound
        ├── PlanError                  a planner or reviewer named a worker or subtask that
        │                              does not exist
        ├── HandoffLoopError           a handoff ran away
        │   ├── MaxHandoffsExceededError  still handed on after `max_turns` turns
        │   └── PingPongDetectedError  two agents bounced the work back and forth
        ├── MaxStepsExceededError      a graph ran more nodes than `max_turns` allows
        ├── QuorumNotMetError          fewer `Parallel` branches succeeded than `min_success`
        ├── RejectedError              a person (or a deadline) rejected a proposed action
        ├── CircuitOpenError           a breaker is open: the call failed fast, without running
        ├── PolicyDeniedError          a policy forbids this call; never retried
        ├── GuardrailTrippedError      an agent's input or output guardrail tripped; never
        │                              retried
        ├── BudgetExceededError        a token or cost budget ran out; never retried
        ├── RunLimitExceededError      a run passed one of its limits (steps, deadline,
        │   │                          input, output or journal size); never retried
        │   └── RunTimeoutError        the whole run passed its deadline
        ├── TransientError             worth retrying: the retry layer acts on these by default
        │   ├── StepTimeoutError       a step ran past its timeout (also a TimeoutError)
        │   ├── ModelResponseError     a model answered with something malformed
        │   ├── ProviderError          a provider said 429/5xx or the connection broke
        │   └── MCPConnectionError     an MCP server is unreachable, or died mid-call
        ├── MCPServerError             an MCP tool returned an error, or the server broke the
        │                              protocol; not retried
        └── ModelError                 a provider refused for good (400, 401, 404)
            └── OutputTruncatedError   the answer was cut off at `max_tokens`; asking the same
                                       again would be cut off again

    Suspended                          a signal, not a failure: the run waits for the outside
    └── Parked                         world; Parked: the process is shutting down, the run
        │                              stops at a step boundary and stays `running`, for any
        │                              worker to resume
        ├── LeaseLost                  another process took over the run: this one stops
        │                              driving it
        └── JournalUnavailable         a journal row could not be made durable: the run stops
                                       there and stays `running`, to be resumed

The naming rule: every failure's class ends in `Error` (PEP 8's rule for exceptions that are
errors); a name that ended in `Failed` ends in `Error` instead (`StepError`), any other gained
the suffix (`BudgetExceededError`). The signals under `Suspended` are not failures (a run
that raises one goes on later), so they are named for the state they leave the run in. The
errors a pattern raises are defined here too, so the whole tree is in one place. The names
before the rule still work for one release, with a `DeprecationWarning` (`RENAMED`).

Every message names the agent and the step it is about, so a line in a log is enough to
find the place. Model errors that came with an answer carry its token `usage`, so a failed
attempt is paid for in the step's and the run's usage like a good one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podium.core.records import Usage


class PodiumError(Exception):
    """Root of everything podium raises on purpose."""


class UsageError(PodiumError):
    """The caller misused the API or handed in bad input; retrying will not help."""

    @classmethod
    def missing_extra(cls, what: str, extra: str, error: ImportError) -> UsageError:
        """`what` cannot work without an optional extra: name the missing module and the
        install line (raise it `from None`: the ImportError's traceback says no more)."""
        return cls(
            f"{what} needs the {extra} extra ({error.name} is missing): "
            f"pip install 'podium[{extra}]'"
        )


class PolicyError(UsageError):
    """A malformed policy (code or a workflow file's `policies:`): `path` names the field
    (`grants[0].when.amount.max`), `problem` what is wrong with it."""

    def __init__(self, path: Sequence[str | int], problem: str) -> None:
        self.path = tuple(path)
        self.problem = problem
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        super().__init__(f"policy {where.lstrip('.') or '(top level)'}: {problem}")


class SpecError(UsageError):
    """A workflow spec is malformed; the message names the path inside the spec."""


class SpecProblemsError(SpecError):
    """A `SpecError` that keeps its problems (`podium.spec.Problem`s) as data, for tools that
    show them one by one."""

    def __init__(self, source: str, problems: Sequence[Any]) -> None:
        self.source = source
        self.problems = tuple(problems)
        n = len(self.problems)
        what = "a problem" if n == 1 else f"{n} problems"
        super().__init__(f"{source} has {what}: " + "; ".join(str(p) for p in self.problems))


class ScriptExhaustedError(UsageError):
    """The code asked a `ScriptedModel` for more answers than the test planned."""


class TargetError(UsageError):
    """A target (`module:object` or a YAML file) cannot be loaded."""


class UnknownRunError(UsageError):
    """No run with this id exists in the store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}")
        self.run_id = run_id


class RunError(PodiumError):
    """A run failed while executing."""


class HandoffTypeError(RunError):
    """A value handed from one agent to another does not match the receiver's input type."""

    def __init__(self, sender: str, receiver: str, problems: str) -> None:
        super().__init__(f"handoff from {sender!r} to {receiver!r}: {problems}")
        self.sender = sender
        self.receiver = receiver


class OutputTypeError(RunError):
    """An agent returned a value that does not match its declared output type."""

    def __init__(self, agent: str, step: str, problems: str) -> None:
        super().__init__(f"agent {agent!r} at {step}: output {problems}")
        self.agent = agent
        self.step = step


class StepError(RunError):
    """A step failed for good; carries the agent, the step key and the last error."""

    def __init__(self, agent: str, step: str, cause: BaseException) -> None:
        super().__init__(f"agent {agent!r} at {step} failed: {type(cause).__name__}: {cause}")
        self.agent = agent
        self.step = step
        self.cause = cause


class NonDeterminismError(RunError):
    """Replaying a finished run, the code made a call its journal does not hold, skipped one
    it holds, or called another agent at a step key: the orchestration is not a function of
    its steps' results (it branches on time, randomness or the outside world), so a resume
    of such a run could take another path than the one journaled."""

    def __init__(self, run_id: str, step: str, problem: str) -> None:
        super().__init__(
            f"run {run_id} does not replay at {step}: {problem}. Orchestration code must decide "
            "only from its input and its steps' results (move time, randomness and I/O into "
            "a step: an agent or a tool)"
        )
        self.run_id = run_id
        self.step = step
        self.problem = problem


class MaxTurnsExceededError(RunError):
    """An LLMAgent asked for tools more times than its `max_turns` allows."""


# raised by the patterns
class PlanError(RunError):
    """The planner (or reviewer) named a worker or subtask that does not exist."""


class HandoffLoopError(RunError):
    """A handoff ran away: too many transfers, or two agents bouncing the work back and forth."""

    def __init__(self, message: str, path: Sequence[str]) -> None:
        super().__init__(message)
        self.path = list(path)


class MaxHandoffsExceededError(HandoffLoopError):
    """The work was still being handed on after `max_turns` agents' turns."""


class PingPongDetectedError(HandoffLoopError):
    """Two agents handed the work back and forth `ping_pong` times."""


class MaxStepsExceededError(RunError):
    """A graph ran more nodes than its `max_turns` allows; names the last nodes it visited."""

    def __init__(self, graph: str, steps: int, trail: Sequence[str]) -> None:
        super().__init__(
            f"Graph {graph!r} reached max_turns={steps} without reaching END; "
            f"last nodes: {' -> '.join(trail)}"
        )
        self.graph = graph
        self.steps = steps
        self.trail = tuple(trail)


class QuorumNotMetError(RunError):
    """Fewer branches succeeded than `min_success` asks for."""


class RejectedError(RunError):
    """A person, or a deadline acting for one, rejected what a `HumanApproval` proposed; the
    flow stops there and the reason is recorded."""

    def __init__(self, step: str, comment: str, by: str | None = None) -> None:
        who = f" by {by}" if by else ""
        super().__init__(f"rejected at {step}{who}: {comment or 'no reason given'}")
        self.step = step
        self.comment = comment
        self.by = by


class CircuitOpenError(RunError):
    """A circuit breaker is open for this agent or model endpoint: the call fails fast so the
    fallback (if any) takes over while the endpoint recovers."""

    def __init__(self, key: str, retry_in: float) -> None:
        super().__init__(f"circuit {key!r} is open; next probe in {max(retry_in, 0):.1f}s")
        self.key = key
        self.retry_in = retry_in


class PolicyDeniedError(RunError):
    """A policy forbids this call, or a person rejected it. Retrying cannot help. In an
    `LLMAgent`'s tool loop it goes back to the model as a refusal it can act on; from
    `ctx.use` it reaches the caller. `tool`, `agent`, `rule`, `reason` and `args_hash` say
    which call was refused, by which rule, and why."""

    def __init__(
        self,
        message: str,
        *,
        tool: str = "",
        agent: str = "",
        rule: str = "",
        reason: str = "",
        args_hash: str = "",
    ) -> None:
        super().__init__(message)
        self.tool = tool
        self.agent = agent
        self.rule = rule
        self.reason = reason or message
        self.args_hash = args_hash


class GuardrailTrippedError(RunError):
    """An agent's input or output guardrail tripped: the value crossing the door was stopped.
    The same value trips it again, so it is never retried."""

    def __init__(self, guard: str, where: str, agent: str, step: str, info: object = None) -> None:
        why = "" if info is None else f": {info}"
        super().__init__(
            f"{where} guardrail {guard!r} of agent {agent!r} tripped at {step}{why}; the "
            f"{where} was stopped (change the {where}, or the guardrail if it is wrong)"
        )
        self.guard = guard
        self.where = where
        self.agent = agent
        self.step = step
        self.info = info


class BudgetExceededError(RunError):
    """A budget (tokens, dollars, calls, seconds) ran out, so a model or tool call was not
    started. Never retried, and not wrapped in `StepError`: it names the budget's `scope`
    (`"run"`, or the agent and step key it covers), the `limit` that ran out, its `maximum`,
    what was `spent`, and the `step` that was refused. `key` is the scope's step key (`""`
    for the run): a pattern can tell its own budget (`key == ctx.key`) from one above it."""

    def __init__(
        self,
        scope: str,
        limit: str,
        maximum: float,
        spent: float,
        step: str,
        kind: str = "model",
        key: str = "",
    ) -> None:
        super().__init__(
            f"{scope} budget exhausted: {limit} {format_spend(limit, spent)} of "
            f"{format_spend(limit, maximum)} spent; {kind} call at {step} not started"
        )
        self.scope = scope
        self.limit = limit
        self.maximum = maximum
        self.spent = spent
        self.step = step
        self.kind = kind
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        args = (self.scope, self.limit, self.maximum, self.spent, self.step, self.kind, self.key)
        return (type(self), args)


def format_spend(limit: str, value: float) -> str:
    """A budget figure as people read it: dollars, seconds, or a count."""
    if limit == "usd":
        return f"${value:.4f}"
    if limit == "seconds":
        return f"{value:.1f}s"
    return f"{int(value):,}"


class RunLimitExceededError(RunError):
    """A run passed one of the limits every run has (OWASP LLM10, unbounded consumption):
    `limit` is `max_steps`, `deadline`, `max_input_bytes`, `max_output_bytes` or
    `max_journal_bytes`, `maximum` its value, `used` what the run reached, `step` the step
    key refused (or "" for the run). Never retried, and not wrapped in `StepError`: trying
    again cannot fit a run into a limit it passed. What completed stays journaled: resume
    with a larger limit (`rt.resume(run_id, max_steps=...)`, `podium resume --max-steps`)."""

    def __init__(
        self, run_id: str, limit: str, maximum: float, used: float, step: str = ""
    ) -> None:
        where = f" at {step}" if step else ""
        unit = {"deadline": "s of running", "max_steps": " steps"}.get(limit, " bytes")
        env = "PODIUM_RUN_DEADLINE" if limit == "deadline" else f"PODIUM_{limit.upper()}"
        flag = "--" + limit.replace("_", "-")
        then = (
            "nothing was stored; give a smaller input or raise the limit"
            if limit == "max_input_bytes"
            else "what completed stays journaled; raise the limit and resume the run"
        )
        super().__init__(
            f"run {run_id}{where} passed its {limit} limit: {_figure(used)}{unit}, the limit "
            f"is {_figure(maximum)}{unit}; {then} ({limit}=... on Runtime, or {flag} on "
            f"podium run and resume, or {env})"
        )
        self.run_id = run_id
        self.limit = limit
        self.maximum = maximum
        self.used = used
        self.step = step

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.limit, self.maximum, self.used, self.step))


def _figure(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


class RunTimeoutError(RunLimitExceededError):
    """A run passed its deadline (`deadline`, seconds of running, waits for people not
    counted): every branch was cancelled."""

    def __init__(self, run_id: str, maximum: float, used: float | None = None) -> None:
        super().__init__(run_id, "deadline", maximum, maximum if used is None else used)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.run_id, self.maximum, self.used))


class TransientError(RunError):
    """A failure that may go away on its own; retried by default."""


class StepTimeoutError(TransientError, TimeoutError):
    """A step ran longer than its timeout."""

    def __init__(self, agent: str, step: str, seconds: float) -> None:
        super().__init__(f"agent {agent!r} at {step} timed out after {seconds:g}s")
        self.agent = agent
        self.step = step
        self.seconds = seconds


class ModelResponseError(TransientError):
    """A model's answer was malformed (bad JSON in a tool call, a missing field, wrong schema).

    Retried by default: asking again usually gives a well-formed answer. `usage` is what the
    malformed answer cost, when the provider said.
    """

    def __init__(self, message: str, *, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class ProviderError(TransientError):
    """A provider failed in a way that may pass: rate limit, 5xx, connection reset. `usage`
    is what was spent before it failed (a stream that broke off), when known."""

    def __init__(
        self, message: str, *, status: int | None = None, usage: Usage | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.usage = usage


class MCPConnectionError(TransientError):
    """An MCP server could not be reached (its command would not start, nothing listens at
    its URL), or its connection broke while a call was in flight (the server died). Retried:
    the next attempt opens a new connection, starting the server again if podium runs it."""

    def __init__(self, server: str, problem: str) -> None:
        super().__init__(f"MCP server {server!r}: {problem}")
        self.server = server
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.server, self.problem))


class MCPServerError(RunError):
    """An MCP server answered, and the answer is a failure: the tool returned `isError`, or the
    server refused the request (unknown tool, bad arguments, a protocol error). Not retried:
    the same call gets the same answer. `tool` is the tool (or resource, or prompt) asked."""

    def __init__(self, server: str, tool: str, problem: str) -> None:
        super().__init__(f"MCP server {server!r}, {tool!r}: {problem}")
        self.server = server
        self.tool = tool
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.server, self.tool, self.problem))


class ModelError(RunError):
    """A provider refused the request for good (bad request, auth, unknown model)."""

    def __init__(
        self, message: str, *, status: int | None = None, usage: Usage | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.usage = usage


class OutputTruncatedError(ModelError):
    """The model stopped at its token limit (`finish_reason="length"`) in the middle of an
    answer that had to be whole (structured output, tool arguments). Not retried: the same
    request stops at the same limit. Raise `max_tokens`, or ask for less."""

    def __init__(self, message: str, *, max_tokens: int | None, usage: Usage | None) -> None:
        super().__init__(message, usage=usage)
        self.max_tokens = max_tokens


class SweepError(PodiumError):
    """`Runtime.sweep` resumed every overdue run it could, and could not resume these.

    `results` are the runs it did resume; `failures` maps each other run id to why not. The
    runs it could not resume still wait, untouched.
    """

    def __init__(self, results: list[Any], failures: dict[str, str]) -> None:
        lines = "; ".join(f"{run_id}: {why}" for run_id, why in failures.items())
        super().__init__(
            f"{len(failures)} overdue run(s) could not be resumed ({len(results)} were): {lines}"
        )
        self.results = results
        self.failures = failures


class Suspended(PodiumError):
    """Raised on purpose to park a run until the outside world answers (a person, an event).

    The run's status becomes `waiting`; nothing done so far is lost.
    """

    def __init__(self, step: str, reason: str, payload: object = None) -> None:
        super().__init__(f"step {step} waits: {reason}")
        self.step = step
        self.reason = reason
        self.payload = payload


class Parked(Suspended):
    """The runtime is draining (SIGTERM): no new step starts; the run stays `running` and any
    worker may resume it."""


class LeaseLost(Parked):
    """Another process holds the run's lease now (this one's ran out, or it was taken from a
    holder believed dead): this process stops driving the run and writes nothing more of it,
    so nothing is done twice; the new holder goes on from the journal."""

    def __init__(self, run_id: str, step: str = "") -> None:
        where = f" at {step}" if step else ""
        reason = (
            f"run {run_id}: another process took over its lease; this one stopped driving "
            f"it{where} and left it to the new holder"
        )
        super().__init__(step, reason)
        self.args = (reason,)
        self.run_id = run_id


class JournalUnavailable(Parked):
    """A step's journal row could not be made durable (the store failed). The run stops
    before anything else starts and stays `running`: resume it once the store is healthy;
    the step runs again only if it was not journaled."""

    def __init__(self, step: str, cause: BaseException) -> None:
        reason = (
            f"step {step}: its journal row could not be written ({type(cause).__name__}: "
            f"{cause}); the run stopped there and stays running: resume it once the store works"
        )
        super().__init__(step, reason)
        self.args = (reason,)
        self.cause = cause


# Old name -> new name, for one release (see the naming rule above).
RENAMED: dict[str, str] = {
    "BudgetExceeded": "BudgetExceededError",
    "CircuitOpen": "CircuitOpenError",
    "MaxHandoffsExceeded": "MaxHandoffsExceededError",
    "MaxStepsExceeded": "MaxStepsExceededError",
    "MaxTurnsExceeded": "MaxTurnsExceededError",
    "OutputTruncated": "OutputTruncatedError",
    "PingPongDetected": "PingPongDetectedError",
    "PolicyDenied": "PolicyDeniedError",
    "QuorumNotMet": "QuorumNotMetError",
    "Rejected": "RejectedError",
    "RunTimeout": "RunTimeoutError",
    "ScriptExhausted": "ScriptExhaustedError",
    "SpecProblems": "SpecProblemsError",
    "StepFailed": "StepError",
    "StepTimeout": "StepTimeoutError",
    "SweepFailed": "SweepError",
}


def renamed(module: str, old: Sequence[str], *, depth: int = 0) -> Callable[[str], Any]:
    """A module `__getattr__` that serves the old names in `old` (keys of `RENAMED`), each
    with a `DeprecationWarning` on use: for the modules that exported them. `depth`: how many
    calls the module's own `__getattr__` wraps around this one, so that the warning points
    at the user's line."""
    served = frozenset(old)

    def __getattr__(name: str) -> Any:
        if name not in served:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new = RENAMED[name]
        warnings.warn(
            f"{module}.{name} is now {new} (every podium error ends in Error); "
            f"the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2 + depth,
        )
        return globals()[new]

    return __getattr__


__getattr__ = renamed(__name__, list(RENAMED))
