"""`LLMAgent`: a model with instructions and tools, looping until it answers.

    triage = LLMAgent(
        "triage",
        model="openai:gpt-4o-mini",
        instructions="Decide whether the order can be refunded.",
        tools=[lookup_order, refund],
        output_type=Decision,
    )

Every model call is its own step through the door (`<agent key>/model#n`), so it is
journaled, retried and timed like any other hop; on resume a model's earlier answers are
replayed from the journal, not asked again, and the loop takes the same path.

What can go wrong with an answer, and what happens:

- structured output that is not JSON or does not fit `output_type`: the answer goes back to
  the model with the problem named, as a new step (`Asking`, at most `max_reasks` times);
- a tool that does not exist, tool arguments that do not validate, a tool call that is not
  JSON: the model step fails with `ModelResponseError`, which the door retries;
- an answer cut off at `max_tokens` where it had to be whole: `OutputTruncatedError`, not
  retried (the same request stops at the same place).

Every attempt's tokens count in the step's usage, failed attempts' included.

A tool call the run's policy refuses (or a person rejects) goes back to the model as a tool
message, "refused by policy: <reason>; do not retry this call, ...", so the agent can go on;
a call that needs a person's approval suspends the run at that call.

Tool calls of one turn run concurrently, each through the door; their results go back to the
model in the order it asked. A forcing `tool_choice` (`"required"` or a tool's name) applies
until a tool has run, then the model is asked without it, so it cannot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from podium.agents.answer import REASK, AnswerSpec, Asking
from podium.agents.base import AgentBase
from podium.agents.batch import BATCH_SIZE, Batch, BatchStep, as_batch
from podium.agents.kinds import Builder, Loc, NodeFields, PythonRef, Ref, Spec, register
from podium.core.bounds import REASKS, SECONDS, TURNS
from podium.core.names import check_name
from podium.core.serde import describe_validation_error, dumps
from podium.core.tools import ToolSpec
from podium.errors import (
    MaxTurnsExceededError,
    ModelError,
    ModelResponseError,
    PolicyDeniedError,
    ProviderError,
    UsageError,
)
from podium.governance.privacy import check_sees
from podium.governance.taint import PinnedPlan
from podium.models.base import (
    Message,
    Model,
    ModelDone,
    ModelResponse,
    ModelSettings,
    ToolCall,
    stream_response,
)
from podium.models.settings import parse_model_spec, resolve_model
from podium.models.tiers import PREFIX as TIER_PREFIX
from podium.models.tiers import Tiers
from podium.runtime.cache import Cache, as_cache
from podium.tools.mcp import MCPServer
from podium.tools.tool import Tool

if TYPE_CHECKING:
    from podium.core.records import Usage
    from podium.runtime.breaker import Breaker
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.door import Call
    from podium.runtime.policies import Retry


@functools.cache
def _response_adapter() -> TypeAdapter[ModelResponse]:
    return TypeAdapter(ModelResponse)


def check_model_response(value: Any) -> ModelResponse:
    """A `ModelResponse` from itself or from its JSON form (a journal row read back)."""
    if isinstance(value, ModelResponse):
        return value
    return _response_adapter().validate_python(value)


class _ModelStep:
    """The target the door sees for one agent's model calls: input is the message list,
    output a `ModelResponse` whose `output` is still plain JSON (so it journals as is)."""

    budget = None  # a model step opens no budget scope of its own
    __slots__ = (
        "agent",
        "answer",
        "batch",
        "breaker",
        "breaker_key",
        "cache",
        "fallbacks",
        "model",
        "name",
        "output_schema",
        "retry",
        "settings",
        "tier",
        "timeout",
        "tool_specs",
        "tools",
    )

    check_output = staticmethod(check_model_response)

    def __init__(
        self,
        agent: LLMAgent,
        model: Model,
        fallback_models: Sequence[Model] = (),
        tier: str | None = None,
        *,
        primary: bool = True,
    ) -> None:
        self.name = "model"
        self.tier = tier  # the tier the model was chosen by (shown in `step.started`)
        self.agent = agent.name
        self.model = model
        # A breaker guards the model endpoint, shared by every agent that uses it.
        self.breaker = getattr(model, "breaker", None) or agent.model_breaker
        self.breaker_key = f"model:{getattr(model, 'endpoint', None) or model.name}"
        # A model may carry its own cache policy; else the agent's (`cache=`) applies.
        self.cache: Cache | None = (
            as_cache(getattr(model, "cache", None), f"model {model.name!r}") or agent.model_cache
        )
        self.fallbacks = tuple(
            _ModelStep(agent, m, tier=tier, primary=False) for m in fallback_models
        )
        self.tools = agent.tools
        self.tool_specs: tuple[ToolSpec, ...] = tuple(t.spec for t in agent.tools.values())
        self.settings = agent.settings
        self.retry = getattr(model, "retry", None) or agent.retry  # a model may carry its own
        self.timeout: float | None = None
        self.answer = agent.answer_spec
        self.output_schema = None if self.answer is None else self.answer.schema
        # A batchable agent's first ask of an item joins a batch (fallbacks go alone).
        self.batch = None if agent.batch is None or not primary else BatchStep(self, agent.batch)

    @property
    def model_name(self) -> str:
        """The model this step asks: its price, and its row in `podium cost`."""
        return self.model.name

    def cache_identity(self, messages: Any) -> dict[str, Any]:
        """What decides this step's answer, for the cache's key: the model and where it is
        served, the settings, the messages, the tools and the answer's schema."""
        model = self.model
        return {
            "model": self.breaker_key,
            "model_settings": [
                getattr(model, "settings", None),
                getattr(model, "max_tokens", None),
            ],
            "settings": self.settings,
            "messages": messages,
            "tools": self.tool_specs,
            "output_schema": self.output_schema,
        }

    def unforced(self) -> _ModelStep:
        """This step without a forcing `tool_choice`: what the model is asked once a tool ran.
        Same name, so the step keys count on (`model#1`, `model#2`)."""
        settings = self.settings
        if settings is None or not settings.forces_tool:
            return self
        free = copy.copy(self)
        free.settings = dataclasses.replace(settings, tool_choice=None)
        free.fallbacks = tuple(fb.unforced() for fb in self.fallbacks)
        return free

    async def invoke(self, call: Call) -> ModelResponse:
        try:
            if call.run.live is None:  # nobody reads the run as it happens: just ask
                response = await self.model.respond(
                    call.input,
                    tools=self.tool_specs,
                    output_schema=self.output_schema,
                    settings=self.settings,
                )
            else:
                response = await self._streamed(call)
        except (ModelResponseError, ModelError, ProviderError) as e:
            _spend(call, self.model.name, e.usage)  # malformed, cut off or broken off: paid for
            raise
        _spend(call, self.model.name, response.usage)
        if response.tool_calls:
            self._check_tool_calls(response, call.key)
        elif self.answer is not None:
            self.answer.check_whole(self.model.name, response, self.settings)
        return response

    async def _streamed(self, call: Call) -> ModelResponse:
        """Ask with the model's stream, handing each piece of text to the run's reader as a
        `model.delta` of this step and attempt; the answer journaled is the stream's whole
        response, whose text the pieces join to."""
        emit = call.run.emit_delta
        events = stream_response(
            self.model,
            call.input,
            tools=self.tool_specs,
            output_schema=self.output_schema,
            settings=self.settings,
        )
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, ModelDone):
                    return event.response
                if event.text:
                    emit(call.key, call.name, call.attempt, event.text)
        raise ProviderError(f"model {self.model.name!r}: stream ended without a final response")

    def _check_tool_calls(self, response: ModelResponse, key: str) -> None:
        for tc in response.tool_calls:
            tool = self.tools.get(tc.name)
            if tool is None:
                raise ModelResponseError(
                    f"agent {self.agent!r} at {key}: model asked for unknown tool {tc.name!r} "
                    f"(tools: {sorted(self.tools) or 'none'})"
                )
            try:
                tool.check_input(tc.arguments)
            except ValidationError as e:
                raise ModelResponseError(
                    f"agent {self.agent!r} at {key}: arguments for tool {tc.name!r}: "
                    f"{describe_validation_error(e)}"
                ) from None


def _spend(call: Call, model: str, usage: Usage | None) -> None:
    """Add one attempt's tokens, priced, to the step's (the door retries with the same
    `Call`). A step that never gets here (a cache hit) costs nothing."""
    if usage is not None:
        prices = call.run.prices
        if prices is not None:
            usage = prices.priced(model, usage)
        call.usage = usage if call.usage is None else call.usage + usage


class LLMAgent(AgentBase[Any, Any]):
    """A model with instructions and tools. Its output is text, or `output_type` when set.
    `tools` may hold `MCPServer`s: their tools join the agent's at its first run, listed
    through the runtime's connection to each server (see `podium.tools.mcp`).

    `settings` go with every request (`tool_choice`, `output_mode`, `max_tokens`, ...);
    `max_reasks` bounds how often a structured answer that does not fit is sent back.
    `fallback_models` are tried in order when the model fails for good (after retries, or
    while its circuit is open); `model_breaker` guards the model endpoint (unless the model
    carries a `breaker` of its own). `budget` limits what each invocation of the agent may
    spend, its model and tool calls together (see `podium.Budget`). `cache` (`True` or a
    `podium.Cache`) reuses the model's answer to the same request (see `podium.runtime.cache`).

    `tier` (or `model="tier:<name>"`) asks for a kind of model instead of a model: the
    runtime's tiers say which model and fallbacks that is (`Runtime(tiers=...)`), else the
    agent's own `tiers` table (a workflow file's `tiers:`). `on_tier` makes a copy that asks
    another tier, for a router that sends easy inputs to a cheap one.

    `batchable` (`True` for 8 items, a number of items, or a `podium.Batch`) lets calls that
    arrive together share one model call: each stays its own journaled step, the agent's
    instructions are sent once for all of them (see `podium.agents.batch`). A batchable
    agent answers in one turn, so it has no tools.
    """

    def __init__(
        self,
        name: str,
        *,
        model: Model | str | None = None,
        instructions: str,
        tools: Sequence[Tool | MCPServer] = (),
        output_type: Any = None,
        max_turns: int = 10,
        max_reasks: int = 2,
        settings: ModelSettings | None = None,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        fallback_models: Sequence[Model | str] = (),
        model_breaker: Breaker | None = None,
        budget: Budget | None = None,
        cache: Cache | bool | None = False,
        tier: str | None = None,
        tiers: Tiers | Mapping[str, Any] | None = None,
        batchable: Batch | int | bool | None = False,
        roles: Sequence[str] = (),
        sees_pii: Iterable[str] = (),
        plan: PinnedPlan | Sequence[Any] | None = None,
        input_guardrails: Sequence[Any] = (),
        output_guardrails: Sequence[Any] = (),
    ) -> None:
        self._setup(
            name,
            input_type=Any,
            output_type=output_type or str,
            retry=retry,
            timeout=timeout,
            description=description,
            budget=budget,
            roles=roles,
        )
        TURNS.check(f"agent {name!r}", "max_turns", max_turns)
        REASKS.check(f"agent {name!r}", "max_reasks", max_reasks)
        self.instructions = instructions
        # The kinds of PII it (and so its model) may see raw under `Runtime(pii=...)`.
        self.sees_pii = check_sees(sees_pii, f"agent {name!r}")
        self.max_turns = max_turns
        self.max_reasks = max_reasks
        self.settings = settings
        self.tools: dict[str, Tool] = {}
        # MCP servers whose tools join `tools` at the agent's first run (listing them needs
        # a runtime's connection); until then a plan or `tool_choice` may name them.
        self.mcp_servers: tuple[MCPServer, ...] = tuple(
            t for t in tools if isinstance(t, MCPServer)
        )
        self._mcp_listed = not self.mcp_servers
        for t in tools:
            if isinstance(t, MCPServer):
                continue
            if not isinstance(t, Tool):
                raise UsageError(f"agent {name!r}: {t!r} is not a Tool (decorate it with @tool)")
            if t.name in self.tools:
                raise UsageError(f"agent {name!r}: two tools are named {t.name!r}")
            self.tools[t.name] = t
        if self._mcp_listed:
            _check_tool_choice(name, settings, self.tools)
        self.batch = as_batch(batchable, f"agent {name!r}")
        if self.batch is not None and (self.tools or self.mcp_servers):
            used = [*sorted(self.tools), *(repr(s) for s in self.mcp_servers)]
            raise UsageError(
                f"agent {name!r}: a batchable agent answers each item in one model call, so it "
                f"cannot use tools ({', '.join(used)})"
            )
        self.answer_spec = AnswerSpec.for_type(name, output_type)
        self.tier = _tier_of(name, model, tier)
        self.tiers = _as_tiers(tiers, name)
        own = () if self.tier is not None else (model,)  # a tier's models: its table's
        for spec in (*own, *fallback_models):
            if isinstance(spec, str):
                parse_model_spec(spec)  # a typo fails here, before any run starts
        self._model_spec = None if self.tier is not None else model
        self._fallback_specs = tuple(fallback_models)
        self.model_breaker = model_breaker
        self.model_cache = as_cache(cache, f"agent {name!r}")
        self._step: _ModelStep | None = None
        self._tier_steps: dict[int, tuple[Tiers, _ModelStep]] = {}
        self.plan = _as_plan(plan, name, self.tools, pending=not self._mcp_listed)
        self._guardrails(input_guardrails, output_guardrails)

    def with_plan(self, plan: PinnedPlan | Sequence[Any]) -> LLMAgent:
        """This agent with `plan` pinned instead, a plan made while the run runs (a
        planner's output: `[{"tool": ..., "args": {...}}, ...]`). It counts only when the
        agent is called by a caller that has read nothing untrusted (plan-then-execute:
        plan from the trusted task, then execute); else the agent runs with no plan."""
        twin = copy.copy(self)
        pinned = _as_plan(plan, self.name, self.tools, pending=not self._mcp_listed)
        twin.plan = None if pinned is None else PinnedPlan(pinned.calls, at_run=True)
        return twin

    @property
    def output_adapter(self) -> TypeAdapter[Any] | None:
        """How answers are validated (None for text)."""
        return None if self.answer_spec is None else self.answer_spec.adapter

    @property
    def model(self) -> Model:
        """The model, resolved on first use so an agent can be declared before env is set.
        An agent that asks for a tier has no model of its own (the runtime picks it)."""
        if self.tier is not None:
            raise UsageError(
                f"agent {self.name!r} asks for tier {self.tier!r}: the runtime's tiers pick "
                "its model"
            )
        return self._model_step().model

    def on_tier(self, tier: str, *, name: str | None = None) -> LLMAgent:
        """This agent asking for `tier` instead: the same instructions, tools, output and
        settings, named `name` (default `<name>.<tier>`)."""
        twin = copy.copy(self)
        twin.name = check_name(name or f"{self.name}.{tier}")
        twin.tier = _tier_of(twin.name, None, tier)
        twin._model_spec = None
        twin._step = None
        twin._tier_steps = {}
        return twin

    def _step_for(self, ctx: RunContext) -> _ModelStep:
        """The model step this run asks: the agent's model, or its tier's in this runtime."""
        if self.tier is None:
            return self._model_step()
        table = ctx.tiers
        if table is None or self.tier not in table:
            table = self.tiers
        if table is None or self.tier not in table:
            tables = [t for t in (ctx.tiers, self.tiers) if t is not None]
            known = sorted({name for t in tables for name in t.names()})
            raise UsageError(
                f"agent {self.name!r} at {ctx.key} asks for tier {self.tier!r}, which is not "
                f"defined (tiers: {', '.join(known) or 'none'}): define it with "
                "Runtime(tiers={...}), PODIUM_TIERS or `tiers:` in the workflow file"
            )
        found = self._tier_steps.get(id(table))
        if found is None or found[0] is not table:
            model, *fallbacks = table.models(self.tier)
            own = [self._resolve_fallback(spec) for spec in self._fallback_specs]
            step = _ModelStep(self, model, [*fallbacks, *own], tier=self.tier)
            found = self._tier_steps[id(table)] = (table, step)
        return found[1]

    def _resolve_fallback(self, spec: Model | str) -> Model:
        fb = resolve_model(spec)
        if fb is None:
            raise UsageError(f"agent {self.name!r}: fallback model {spec!r} is not set up")
        return fb

    def _model_step(self) -> _ModelStep:
        if self._step is None:
            model = resolve_model(self._model_spec)
            if model is None:
                raise UsageError(
                    f"agent {self.name!r} has no model: pass model= (a Model, "
                    "'openai:<name>' or 'scripted') or set PODIUM_MODEL"
                )
            fallbacks = [self._resolve_fallback(spec) for spec in self._fallback_specs]
            self._step = _ModelStep(self, model, fallbacks)
        return self._step

    async def _list_mcp_tools(self, ctx: RunContext) -> None:
        """Add the MCP servers' tools to the agent's (once): the model sees them from now on."""
        tools = dict(self.tools)
        for server in self.mcp_servers:
            for t in await server.tools(ctx):
                if t.name in tools:
                    raise UsageError(
                        f"agent {self.name!r}: two tools are named {t.name!r} (one of MCP "
                        f"server {server.name!r}: give the server a prefix=)"
                    )
                tools[t.name] = t
        if self._mcp_listed:  # another run of this agent listed them meanwhile
            return
        _check_tool_choice(self.name, self.settings, tools)
        self.plan = _as_plan(self.plan, self.name, tools)
        self.tools = tools
        self._step = None  # the model steps are made again, with the new tools
        self._tier_steps = {}
        self._mcp_listed = True

    async def run(self, input: Any, ctx: RunContext) -> Any:
        if not self._mcp_listed:
            await self._list_mcp_tools(ctx)
        step = self._step_for(ctx)
        messages = [Message.system(self.instructions), Message.user(_render(input))]
        asking = Asking(self.name, self.answer_spec, messages, max_reasks=self.max_reasks)
        first = step.batch  # a batchable agent's first ask joins a batch; re-asks go alone
        for _ in range(self.max_turns):
            response = await asking.ask(ctx, first or step)
            first = None
            while not response.tool_calls:  # an answer: done, or sent back with the problem
                value = asking.settle(ctx, step, response)
                if value is not REASK:
                    if asking.spec is None:
                        _note_cut_off_text(ctx, response, step.settings)
                    return value
                response = await asking.ask(ctx, step)
            asking.messages.append(Message.assistant(response.text, response.tool_calls))
            ended, results = await self._run_tools(response.tool_calls, ctx)
            if ended:
                return results[-1]  # e.g. a Handoff's transfer tool: its result is the answer
            for tc, result in zip(response.tool_calls, results, strict=True):
                asking.messages.append(Message.tool(tc.id, _render(result), tc.name))
            step = step.unforced()
        raise MaxTurnsExceededError(
            f"agent {self.name!r} at {ctx.key}: still asking for tools after "
            f"{self.max_turns} model turn(s) (max_turns={self.max_turns})"
        )

    async def _run_tools(
        self, calls: Sequence[ToolCall], ctx: RunContext
    ) -> tuple[bool, list[Any]]:
        """Run one turn's tool calls; `(True, [..., result])` when a tool ends the turn.

        Several calls run concurrently, each through the door. Their step keys follow the
        model's order (a task runs up to its first wait, which comes after the key is taken).
        A turn with a tool that ends it (a transfer) runs in order and stops there."""
        tools = [self.tools[tc.name] for tc in calls]
        if len(calls) == 1 or any(getattr(t, "ends_turn", False) for t in tools):
            results = []
            for tool, tc in zip(tools, calls, strict=True):
                results.append(await _use(ctx, tool, tc.arguments))
                if getattr(tool, "ends_turn", False):
                    return True, results
            return False, results
        tasks: list[asyncio.Task[Any]] = []
        try:
            async with asyncio.TaskGroup() as group:
                for tool, tc in zip(tools, calls, strict=True):
                    tasks.append(group.create_task(_use(ctx, tool, tc.arguments)))
        except BaseExceptionGroup as failed:
            raise _first_failure(tasks, failed) from None
        return False, [t.result() for t in tasks]


REFUSAL = "refused by policy: {reason}; do not retry this call, choose another way or answer"


async def _use(ctx: RunContext, tool: Tool, args: Any) -> Any:
    """The tool's result, or, when a policy (or a person asked to approve) refuses the call,
    a refusal the model reads and can act on: the agent goes on instead of failing."""
    try:
        return await ctx.use(tool, args)
    except PolicyDeniedError as e:
        return REFUSAL.format(reason=e.reason)


def _first_failure(tasks: Sequence[asyncio.Task[Any]], group: BaseExceptionGroup[Any]) -> Any:
    """The error of the first tool (in the model's order) that failed, not the group: the
    others were cancelled because of it."""
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            return task.exception()
    return group.exceptions[0]


def _as_plan(
    plan: Any, agent: str, tools: Mapping[str, Tool], *, pending: bool = False
) -> PinnedPlan | None:
    """A pinned plan that names only the agent's own side-effecting tools (`pending`: the
    agent's MCP tools are not listed yet, so a name it does not know may be one of them)."""
    if plan is None:
        return None
    if isinstance(plan, PinnedPlan):
        pinned = plan
    elif isinstance(plan, str | bytes) or not isinstance(plan, Sequence):
        raise UsageError(
            f"agent {agent!r}: plan must be a PinnedPlan or a list of planned(...) calls, "
            f"got {plan!r}"
        )
    else:
        pinned = PinnedPlan(plan)
    for c in pinned.calls:
        tool = tools.get(c.tool)
        if tool is None and pending:
            continue
        if tool is None or not tool.effect:
            effects = sorted(n for n, t in tools.items() if t.effect)
            raise UsageError(
                f"agent {agent!r}: its plan names {c.tool!r}, which is not one of its "
                f"side-effecting tools ({', '.join(effects) or 'none'}); a plan pins effects"
            )
    return pinned


def _as_tiers(tiers: Tiers | Mapping[str, Any] | None, agent: str) -> Tiers | None:
    if tiers is None or isinstance(tiers, Tiers):
        return tiers
    return Tiers(tiers, where=f"agent {agent!r}: tiers")


def _tier_of(agent: str, model: Any, tier: str | None) -> str | None:
    """The tier an agent asks for: `tier=`, or `model="tier:<name>"`; not both."""
    if isinstance(model, str) and model.startswith(TIER_PREFIX):
        if tier is not None:
            raise UsageError(f"agent {agent!r}: give tier= or model='tier:...', not both")
        tier = model[len(TIER_PREFIX) :]
    elif tier is not None and model is not None:
        raise UsageError(f"agent {agent!r}: give model= or tier=, not both")
    if tier is not None and (not isinstance(tier, str) or not tier.strip()):
        raise UsageError(f"agent {agent!r}: tier must be a tier's name, got {tier!r}")
    return tier


def _check_tool_choice(agent: str, settings: ModelSettings | None, tools: dict[str, Tool]) -> None:
    choice = None if settings is None else settings.tool_choice
    if choice is None or choice in ("auto", "none"):
        return
    if not tools:
        raise UsageError(f"agent {agent!r}: tool_choice={choice!r} but the agent has no tools")
    if choice != "required" and choice not in tools:
        raise UsageError(
            f"agent {agent!r}: tool_choice={choice!r} is not 'auto', 'required', 'none' or "
            f"one of its tools ({', '.join(sorted(tools))})"
        )


def _note_cut_off_text(ctx: RunContext, response: ModelResponse, settings: Any) -> None:
    """A text answer that stopped at the token limit is still an answer; say so in the
    run's events, with the limit to raise."""
    if response.finish_reason == "length":
        limit = getattr(settings, "max_tokens", None)
        ctx.emit("model.truncated", max_tokens=limit, chars=len(response.text))


def _render(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


# YAML: `kind: llm` ----------------------------------------------------------------------------
class CacheSpec(Spec):
    """Cache the model's answers for `ttl` seconds (none: as long as the cache keeps them)."""

    ttl: float | None = SECONDS.field(None)


def _batch_size(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One problem for a wrong `batchable`, not one per way it could have been right."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "batchable", "must be true, false or {words}", {"words": BATCH_SIZE.words}
        ) from None


PiiKind = Literal["card", "email", "phone", "iban", "national_id", "secret"]


class PlannedSpec(Spec):
    """A call the agent's pinned plan allows (see `podium.governance.taint`)."""

    tool: str = Field(min_length=1, description="one of the agent's side-effecting tools")
    args: dict[str, Any] = Field(
        default_factory=dict, description="the exact arguments (all of them) the call may have"
    )
    times: int = Field(1, description="how often per invocation (at least 1)")


class MCPServerSpec(Spec):
    """An MCP server whose tools the agent gets (`podium.MCPServer`): a `command` podium
    starts (in the workflow file's folder unless `cwd` says otherwise), or a `url`."""

    command: str | list[str] | None = Field(
        None, description="the server's command line (stdio), e.g. `python -m mcp_server_time`"
    )
    url: str | None = Field(None, description="a streamable HTTP endpoint, `http://host/mcp`")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers (with url)")
    env: dict[str, str] = Field(default_factory=dict, description="environment (with command)")
    cwd: str | None = Field(None, description="where the command runs (relative: to the file)")
    allow: list[str] | None = Field(None, description="only these of its tools")
    deny: list[str] = Field(default_factory=list, description="not these of its tools")
    prefix: str = Field("", description="put in front of each tool's name")
    timeout: float | None = SECONDS.field(None, description="seconds per call")
    resource_tool: StrictBool = Field(
        False, description="add a `read_resource` tool that reads the server's resources"
    )

    @model_validator(mode="after")
    def _one_way(self) -> MCPServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs exactly one of `command` or `url`")
        return self


class LLMSpec(NodeFields):
    """A model with instructions and tools. Without `model`, `PODIUM_MODEL` decides, else a
    scripted echo model (so a spec runs offline instead of calling a provider by surprise)."""

    kind: Literal["llm"]
    model: str | None = Field(
        None,
        min_length=1,
        description="`scripted`, `openai:<model>` (any OpenAI-compatible), `anthropic:<model>`, "
        "`local:<path.gguf>` or `tier:<name>`",
    )
    instructions: str = ""
    tools: list[PythonRef] = Field(default_factory=list)
    mcp_servers: list[MCPServerSpec] = Field(
        default_factory=list, description="MCP servers whose tools the agent gets"
    )
    output_type: Ref | None = Field(
        None, description="`module:Class`: a pydantic model the answer must fit"
    )
    max_turns: int = TURNS.field(10, description="model turns (tool calls) per invocation")
    max_reasks: int = REASKS.field(
        2, description="times a structured answer that does not fit is sent back"
    )
    fallback_models: list[str] = Field(
        default_factory=list, description="models tried in order when `model` fails for good"
    )
    tier: str | None = Field(
        None, min_length=1, description="ask for a tier (`fast`, `smart`) instead of a `model`"
    )
    cache: StrictBool | CacheSpec = Field(
        False, description="reuse the model's answer to the same request (true, or {ttl: s})"
    )
    batchable: Annotated[StrictBool | Annotated[int, BATCH_SIZE], WrapValidator(_batch_size)] = (
        Field(False, description="answer items that arrive together in one model call (true: 8)")
    )
    sees_pii: list[PiiKind] = Field(
        default_factory=list,
        description="kinds of personal data it (and its model) may see raw when the runtime "
        "has privacy on (`PODIUM_PII`); it gets tokens for the others",
    )
    plan: list[PlannedSpec] | None = Field(
        None,
        description="the side-effecting calls it may make after reading untrusted content "
        "(with a contained runtime; any other waits for a person)",
    )
    input_guardrails: list[PythonRef] = Field(
        default_factory=list, description="checks of the input: `module:function`s"
    )
    output_guardrails: list[PythonRef] = Field(
        default_factory=list, description="checks of the answer: `module:function`s"
    )

    @model_validator(mode="after")
    def _batch_without_tools(self) -> LLMSpec:
        if self.batchable is not False and (self.tools or self.mcp_servers):
            raise ValueError(
                "a batchable agent answers each item in one model call, so it cannot have "
                "`tools` or `mcp_servers`"
            )
        return self


def _build(b: Builder, spec: LLMSpec, loc: Loc) -> LLMAgent | None:
    model = _yaml_model(b, spec, loc)
    tools = []
    for i, ref in enumerate(spec.tools):
        tool = b.import_object(ref.python, (*loc, "tools", i, "python"))
        if tool is not None and not isinstance(tool, Tool | MCPServer):
            b.problem(
                (*loc, "tools", i, "python"),
                f"{ref.python!r} is not a tool (use @tool) or an MCPServer",
            )
            tool = None
        tools.append(tool)
    for i, server in enumerate(spec.mcp_servers):
        tools.append(b.construct((*loc, "mcp_servers", i), partial(_mcp_server, b, server)))
    output_type = None
    if spec.output_type is not None:
        output_type = b.import_object(spec.output_type, (*loc, "output_type"))
        if output_type is None:
            return None
    fallbacks = [
        b.model(m, (*loc, "fallback_models", i)) for i, m in enumerate(spec.fallback_models)
    ]
    if (model is None and spec.tier is None) or any(t is None for t in tools):
        return None
    if any(m is None for m in fallbacks):
        return None
    before, after = (
        [
            b.import_object(ref.python, (*loc, where, i, "python"))
            for i, ref in enumerate(getattr(spec, where))
        ]
        for where in ("input_guardrails", "output_guardrails")
    )
    if any(g is None for g in (*before, *after)):
        return None
    plan = None if spec.plan is None else [p.model_dump() for p in spec.plan]
    return b.construct(
        loc,
        lambda: LLMAgent(
            spec.name,
            model=model,
            instructions=spec.instructions,
            tools=tools,
            output_type=output_type,
            max_turns=spec.max_turns,
            max_reasks=spec.max_reasks,
            fallback_models=fallbacks,
            tier=spec.tier,
            tiers=b.tiers,
            cache=spec.cache if isinstance(spec.cache, bool) else Cache(ttl=spec.cache.ttl),
            batchable=spec.batchable,
            sees_pii=spec.sees_pii,
            plan=plan,
            input_guardrails=before,
            output_guardrails=after,
            **b.common(spec),
        ),
    )


def _mcp_server(b: Builder, spec: MCPServerSpec) -> MCPServer:
    """The server a node's `mcp_servers` entry names; a command runs in the file's folder
    (or `cwd`, relative to it), so `python server.py` finds a script next to the file."""
    base = getattr(b, "base_dir", None)
    cwd = spec.cwd
    if spec.command is not None and base is not None:
        folder = Path(base).resolve()
        cwd = str(folder / cwd) if cwd is not None else str(folder)
    return MCPServer(
        spec.command,
        url=spec.url,
        headers=spec.headers,
        env=spec.env,
        cwd=cwd,
        allow=spec.allow,
        deny=spec.deny,
        prefix=spec.prefix,
        timeout=spec.timeout,
        resource_tool=spec.resource_tool,
    )


def _yaml_model(b: Builder, spec: LLMSpec, loc: Loc) -> Any:
    """A model, or `tier:<name>` as written (the runtime's tiers pick the model), or None
    when the node asks for a `tier`."""
    if spec.tier is not None and spec.model is None:
        return None
    if spec.model is not None and spec.model.startswith(TIER_PREFIX):
        return spec.model
    return b.model(spec.model, (*loc, "model"))


register(LLMSpec, _build, draws=LLMAgent, agent=True)
