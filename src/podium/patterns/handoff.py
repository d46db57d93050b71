"""`Handoff`: agents pass the work to one another until one of them answers.

    support = Handoff(
        "support",
        agents=[triage, billing, tech],
        start=triage,
        routes={"triage": ["billing", "tech"], "billing": ["triage"], "tech": ["triage"]},
    )

`routes` says, per agent, whom it may hand off to (names or agents); without `routes` every
agent may hand off to every other. An agent hands off in one of two ways:

- a Python agent *returns* `HandoffTo("billing", payload=..., note="why")`;
- an `LLMAgent` calls a transfer tool: the Handoff gives it one `transfer_to_<agent>` tool per
  receiver (the agent is copied, not changed), whose arguments are `note` and a `payload`
  shaped like the receiver's input type, so the model sees the schema and a malformed payload
  is a `ModelResponseError` (retried: the model is asked again).

The payload becomes the receiver's input, validated at the door, so a wrong one fails with a
`HandoffTypeError` naming both agents and the field. A payload of `None` passes the run's
original input on. A receiver whose input type is `Any` (an `LLMAgent`, say) or
`HandoffInput` receives a `HandoffInput` instead: the original input, the payload, the note,
the sender and every hop so far, so a model sees the whole context.

Each agent's turn is a journaled step (`/support/triage#0`, `/support/billing#0`,
`/support/triage#1`), so a resumed run replays the transfers instead of asking again; the
decisions between them run on the turn driver (`_turns`). Limits, on by default:
`max_turns=11` agents' turns (ten transfers), and a ping-pong detector that ends the run when
the path ends by bouncing between two agents `ping_pong` times (`A, B, A, B` for 2). Both
raise a `HandoffLoopError` naming the path (the work never came back as an answer). A
`deadline` that passes, or a call the door refuses for budget, ends the run with what there
is: a `HandoffResult` with that status, no output, and the agent that had the work named in
`gaps`. Events: `handoff.transfer` for each transfer, `handoff.stop` when an agent answers or
a limit ends the run.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, create_model

from podium.agents.base import AgentBase
from podium.agents.kinds import Builder, Canvas, Loc, NodeFields, Rename, register
from podium.core.bounds import COUNT, SECONDS, TURNS
from podium.core.serde import Validator, to_plain
from podium.core.tools import ToolSpec
from podium.errors import (
    MaxHandoffsExceededError,
    PingPongDetectedError,
    RunError,
    UsageError,
    renamed,
)
from podium.patterns._progress import ping_pong
from podium.patterns._turns import (
    Act,
    Ask,
    Halt,
    Limited,
    Limits,
    Outcomes,
    PatternResult,
    Status,
    Stop,
    TurnState,
    deprecated,
    drive,
    renamed_options,
    turn,
)
from podium.runtime.budget import Budget
from podium.tools.tool import Tool

if TYPE_CHECKING:
    from podium.agents.kinds import NodeSpec
    from podium.runtime.context import RunContext
    from podium.runtime.door import Call
    from podium.runtime.policies import Retry

_MARK = "podium.handoff"


class HandoffTo(BaseModel):
    """Return this from an agent to pass the work to `agent` with `payload`."""

    type: Literal["podium.handoff"] = "podium.handoff"
    agent: str
    payload: Any = None
    note: str = ""

    def __init__(self, agent: str | None = None, /, **data: Any) -> None:
        if agent is not None:
            data["agent"] = agent
        super().__init__(**data)


class Hop(BaseModel):
    """One transfer: who handed what to whom, and why."""

    sender: str
    receiver: str
    note: str = ""
    payload: Any = None


class HandoffInput(BaseModel):
    """What a receiver that asks for context gets: the run's input, this hop's payload and
    note, who sent it, and every hop so far."""

    input: Any = None
    payload: Any = None
    note: str = ""
    sender: str = ""
    hops: list[Hop] = Field(default_factory=list)


class HandoffResult(PatternResult):
    """The answer (`output`), which agent gave it (or had the work when a limit ended the
    run), and the path it took."""

    status: Status = "completed"
    agent: str
    hops: list[Hop] = Field(default_factory=list)

    @property
    def handoffs(self) -> int:
        return len(self.hops)


@dataclass(slots=True)
class _Path(TurnState):
    input: Any
    current: str
    path: list[str] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)


class Handoff(Limited, AgentBase[Any, HandoffResult]):
    """Agents that pass the work along until one answers; see the module docstring.

    Renamed option, still accepted for one release with a `DeprecationWarning`:
    `max_handoffs=n` (now `max_turns=n + 1`: the first agent's turn, then one per
    transfer)."""

    def __init__(
        self,
        name: str,
        agents: Sequence[Any],
        *,
        start: str | Any | None = None,
        routes: Mapping[str, Sequence[str | Any]] | None = None,
        max_turns: int = 11,
        deadline: float | None = None,
        ping_pong: int = 2,
        budget: Budget | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        **renamed: Any,
    ) -> None:
        old = renamed_options("Handoff", renamed, {"max_handoffs": "max_turns"})
        table = _check_agents(name, agents)
        self.routes = _check_routes(name, table, routes)
        self.start = _name_of(start) if start is not None else next(iter(table))
        if self.start not in table:
            raise UsageError(f"Handoff {name!r}: start {self.start!r} is not one of {list(table)}")
        if "max_turns" in old:
            max_turns = _turns_for(name, old["max_turns"])
        self.limits = Limits.checked(f"Handoff {name!r}", max_turns=max_turns, deadline=deadline)
        self.ping_pong = TURNS.check(f"Handoff {name!r}", "ping_pong", ping_pong)
        self.budget = budget
        self.agents = table
        self.members = {n: _Member(a, [table[r] for r in self.routes[n]]) for n, a in table.items()}
        self._setup(
            name,
            input_type=getattr(table[self.start], "input_type", Any),
            output_type=HandoffResult,
            retry=retry,
            timeout=timeout,
            description=description,
        )
        self.check_input = None  # the start agent checks the input when called

    @property
    def max_handoffs(self) -> int:
        deprecated("Handoff.max_handoffs", ".max_turns (one more: the first agent's turn)")
        return int(self.limits.max_turns or 1) - 1

    async def run(self, input: Any, ctx: RunContext) -> HandoffResult:
        st = _Path(input=input, current=self.start, path=[self.start])
        stop = await drive(ctx, "handoff", partial(self._decide, ctx), st, self.limits)
        gaps = {} if stop.status == "completed" else {st.current: f"not finished ({stop.status})"}
        return HandoffResult(
            output=stop.output,
            status=stop.status,
            reason=stop.reason,
            gaps=gaps,
            turns=st.turns,
            agent=st.current,
            hops=st.hops,
        )

    def _decide(self, ctx: RunContext, st: _Path, last: Outcomes | Halt | None) -> Act | Stop:
        """The next agent's turn, or the answer; a runaway path ends the run."""
        if isinstance(last, Halt):
            return self._halted(st, last, ctx)
        if last is None:
            return turn(Ask(self.members[st.current], st.input))
        current = st.current
        handoff = as_handoff(last[0])
        if handoff is None:
            data = {"agent": current, "handoffs": len(st.hops)}
            return Stop("completed", last[0], f"answered by {current!r}", data)
        self._check_route(current, handoff, ctx)
        hop = Hop(
            sender=current,
            receiver=handoff.agent,
            note=handoff.note,
            payload=to_plain(handoff.payload),
        )
        st.hops.append(hop)
        st.path.append(handoff.agent)
        pair = ping_pong(st.path, self.ping_pong)
        if pair is not None:
            error = PingPongDetectedError(
                f"Handoff {self.name!r} at {ctx.key}: {pair[0]!r} and {pair[1]!r} keep handing "
                f"the work back and forth ({' -> '.join(st.path)})",
                st.path,
            )
            why = f"{pair[0]!r} and {pair[1]!r} keep handing the work back and forth"
            return Stop("stalled", None, why, {"agent": current, "path": st.path}, error)
        ctx.emit("handoff.transfer", hop=len(st.hops), **hop.model_dump())
        st.current = handoff.agent
        value = self._input_for(st.input, handoff, st.hops)
        return turn(Ask(self.members[handoff.agent], value, sender=current))

    def _halted(self, st: _Path, halt: Halt, ctx: RunContext) -> Stop:
        """Too many turns is a runaway path (an error); a deadline or a spent budget ends the
        run with no answer, naming who had the work."""
        data = {"agent": st.current, "handoffs": len(st.hops), "path": st.path}
        if halt.status != "max_turns":
            return Stop(halt.status, None, halt.reason, data)
        error = MaxHandoffsExceededError(
            f"Handoff {self.name!r} at {ctx.key}: max_turns={self.limits.max_turns} turns ran "
            f"and the work was handed on again ({' -> '.join(st.path)})",
            st.path,
        )
        return Stop("max_turns", None, halt.reason, data, error)

    def _check_route(self, current: str, handoff: HandoffTo, ctx: RunContext) -> None:
        allowed = self.routes[current]
        if handoff.agent not in allowed:
            raise RunError(
                f"Handoff {self.name!r} at {ctx.key}: agent {current!r} handed off to "
                f"{handoff.agent!r}, which it may not; it may hand off to {allowed or 'nobody'}"
            )

    def _input_for(self, original: Any, handoff: HandoffTo, hops: list[Hop]) -> Any:
        receiver = self.agents[handoff.agent]
        if _wants_context(receiver):
            return HandoffInput(
                input=to_plain(original),
                payload=to_plain(handoff.payload),
                note=handoff.note,
                sender=hops[-1].sender,
                hops=list(hops),
            )
        return original if handoff.payload is None else handoff.payload


def as_handoff(value: Any) -> HandoffTo | None:
    """A `HandoffTo` from itself or its journaled JSON form; None for any other value."""
    if isinstance(value, HandoffTo):
        return value
    if isinstance(value, Mapping) and value.get("type") == _MARK:
        return HandoffTo.model_validate(value)
    return None


class _Member(AgentBase[Any, Any]):
    """An agent as a Handoff runs it: same name, input check and policies, but its output may
    also be a `HandoffTo` (also when replayed from the journal). An `LLMAgent` with receivers
    is replaced by a copy that has a transfer tool per receiver."""

    def __init__(self, agent: Any, receivers: list[Any]) -> None:
        from podium.agents.llm import LLMAgent

        if receivers and isinstance(agent, LLMAgent):
            agent = _with_transfers(agent, receivers)
        self.agent = agent
        self.name = agent.name
        self.roles = tuple(getattr(agent, "roles", ()))  # its policy grants go with it
        self.description = getattr(agent, "description", "")
        self.input_type = getattr(agent, "input_type", Any)
        self.output_type = getattr(agent, "output_type", Any)
        self.retry = getattr(agent, "retry", None)
        self.timeout = getattr(agent, "timeout", None)
        self.check_input = getattr(agent, "check_input", None)
        self.check_output = _or_handoff(getattr(agent, "check_output", None))

    async def run(self, input: Any, ctx: RunContext) -> Any:
        return await self.agent.run(input, ctx)


def _or_handoff(check: Validator | None) -> Validator:
    def checked(value: Any) -> Any:
        handoff = as_handoff(value)
        if handoff is not None:
            return handoff
        return value if check is None else check(value)

    return checked


class TransferTool(Tool):
    """`transfer_to_<agent>`: the tool a model calls to hand off. Its result ends the
    model's turn (`ends_turn`) and becomes the agent's output, a `HandoffTo`."""

    ends_turn = True

    def __init__(self, receiver: Any) -> None:
        self.receiver = receiver.name
        self.name = "transfer_to_" + re.sub(r"[^A-Za-z0-9_-]", "_", receiver.name)
        about = " ".join((getattr(receiver, "description", "") or "").split())
        self.description = f"Hand the conversation over to {receiver.name}" + (
            f": {about}" if about else "."
        )
        fields: dict[str, Any] = {"note": (str, Field("", description="Why you hand off."))}
        if _wants_context(receiver):
            payload_about = "Anything the receiver should know (optional)."
            fields["payload"] = (Any, Field(None, description=payload_about))
        else:
            payload_about = f"The input {receiver.name} needs."
            fields["payload"] = (receiver.input_type, Field(description=payload_about))
        self.args_model = create_model(self.name, **fields)
        self._arg_names = tuple(fields)
        self.parameters = self.args_model.model_json_schema()
        self.parameters.pop("title", None)
        self.spec = ToolSpec(self.name, self.description, self.parameters)
        self.check_output = None
        self.fn = self._transfer
        self.effect, self.idempotent = False, True
        self.reconcile = self.compensate = None
        self.retry, self.timeout, self.thread = None, None, False
        self.is_async, self.ctx_param = True, None

    async def _transfer(self, note: str = "", payload: Any = None) -> HandoffTo:
        return HandoffTo(self.receiver, payload=payload, note=note)

    async def invoke(self, call: Call) -> HandoffTo:
        return await self._transfer(**call.input)


def _with_transfers(agent: Any, receivers: list[Any]) -> Any:
    """A copy of an `LLMAgent` that also has a transfer tool per receiver and is told so.
    A shallow copy keeps every setting (model, fallbacks, breaker, retry) as it is; only the
    tools, the instructions and the lazily built model step are its own."""
    transfers = [TransferTool(r) for r in receivers]
    for t in transfers:
        if t.name in agent.tools:
            raise UsageError(f"agent {agent.name!r} already has a tool named {t.name!r}")
    lines = [f"- {t.name}: {t.description}" for t in transfers]
    clone = copy.copy(agent)
    clone.tools = {**agent.tools, **{t.name: t for t in transfers}}
    clone.instructions = "\n".join(
        [agent.instructions, "", "You may hand the conversation over with these tools:", *lines]
    )
    clone._step = None
    return clone


def _wants_context(agent: Any) -> bool:
    tp = getattr(agent, "input_type", Any)
    if tp is Any or tp is object:
        return True
    return isinstance(tp, type) and issubclass(tp, HandoffInput)


def _turns_for(name: str, max_handoffs: Any) -> int:
    """The old `max_handoffs` (transfers) as turns: one more, the first agent's."""
    transfers: int = COUNT.check(f"Handoff {name!r}", "max_handoffs", max_handoffs)
    return transfers + 1


def _name_of(agent: str | Any) -> str:
    return agent if isinstance(agent, str) else str(getattr(agent, "name", agent))


def _check_agents(name: str, agents: Sequence[Any]) -> dict[str, Any]:
    if isinstance(agents, str) or not isinstance(agents, Sequence):
        raise UsageError(f"Handoff {name!r}: agents must be a list of agents")
    table: dict[str, Any] = {}
    for i, a in enumerate(agents):
        if not (hasattr(a, "name") and hasattr(a, "run")):
            raise UsageError(f"Handoff {name!r}: agent {i} ({a!r}) is not an agent")
        if a.name in table:
            raise UsageError(f"Handoff {name!r}: two agents are named {a.name!r}")
        table[a.name] = a
    if not table:
        raise UsageError(f"Handoff {name!r} needs at least one agent")
    return table


def _check_routes(
    name: str, table: dict[str, Any], routes: Mapping[str, Sequence[str | Any]] | None
) -> dict[str, list[str]]:
    """Each agent's receivers by name; every agent to every other when `routes` is None."""
    if routes is None:
        return {a: [b for b in table if b != a] for a in table}
    if not isinstance(routes, Mapping):
        raise UsageError(f"Handoff {name!r}: routes must be a dict of agent -> list of agents")
    out: dict[str, list[str]] = {a: [] for a in table}
    for sender, receivers in routes.items():
        sender = _name_of(sender)
        if sender not in table:
            raise UsageError(
                f"Handoff {name!r}: routes name {sender!r}, which is not one of {list(table)}"
            )
        if isinstance(receivers, str) or not isinstance(receivers, Sequence):
            raise UsageError(f"Handoff {name!r}: routes[{sender!r}] must be a list of agents")
        for receiver in map(_name_of, receivers):
            if receiver not in table:
                raise UsageError(
                    f"Handoff {name!r}: {sender!r} may hand off to {receiver!r}, which is not "
                    f"one of {list(table)}"
                )
            if receiver == sender:
                raise UsageError(f"Handoff {name!r}: {sender!r} may not hand off to itself")
            if receiver not in out[sender]:
                out[sender].append(receiver)
    return out


# YAML: `kind: handoff` ------------------------------------------------------------------------
class HandoffSpec(NodeFields):
    """Agents that pass the work along. `start` and the names in `routes` are agent names;
    without `routes` every agent may hand off to every other."""

    kind: Literal["handoff"]
    agents: list[NodeSpec] = Field(min_length=1)
    start: str | None = Field(None, min_length=1)
    routes: dict[str, list[str]] | None = None
    max_turns: int = TURNS.field(
        11, description="agents' turns: the first agent's, then one per transfer"
    )
    ping_pong: int = TURNS.field(2, description="back-and-forth bounces that end the run")
    deadline: float | None = SECONDS.field(None, description="seconds for the whole handoff")


def _build(b: Builder, spec: HandoffSpec, loc: Loc) -> Handoff | None:
    agents = b.nodes(spec.agents, (*loc, "agents"))
    if agents is None:
        return None
    names = [str(a.name) for a in agents]
    ok = spec.start is None or b.known(spec.start, names, (*loc, "start"), "agent")
    for sender, receivers in (spec.routes or {}).items():
        ok = b.known(sender, names, (*loc, "routes", sender), "agent") and ok
        for i, receiver in enumerate(receivers):
            ok = b.known(receiver, names, (*loc, "routes", sender, i), "agent") and ok
    if not ok:
        return None
    return b.construct(
        loc,
        lambda: Handoff(
            spec.name,
            agents,
            start=spec.start,
            routes=spec.routes,
            max_turns=spec.max_turns,
            ping_pong=spec.ping_pong,
            deadline=spec.deadline,
            **b.common(spec),
        ),
    )


def _draw(d: Canvas, agent: Handoff, me: str) -> None:
    start = d.box(me, "start", "start", "(())")
    ids = {name: d.draw(member, me) for name, member in agent.agents.items()}
    d.edge(start, ids[agent.start])
    for sender, receivers in agent.routes.items():
        for receiver in receivers:
            d.edge(ids[sender], ids[receiver], "handoff")


def _transfers_as_turns(max_handoffs: Any) -> Any:
    """`max_handoffs: n` (transfers) is `max_turns: n + 1` (the first agent's turn too)."""
    number = isinstance(max_handoffs, int) and not isinstance(max_handoffs, bool)
    return max_handoffs + 1 if number else max_handoffs


register(
    HandoffSpec,
    _build,
    draws=Handoff,
    draw=_draw,
    renamed={
        "max_handoffs": Rename(
            "max_turns", _transfers_as_turns, "one more: the first agent's turn counts too"
        )
    },
)


__getattr__ = renamed(__name__, ["MaxHandoffsExceeded", "PingPongDetected"])
