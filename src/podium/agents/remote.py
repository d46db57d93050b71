"""`RemoteAgent`: an agent in another process, another framework or another organisation,
spoken to over A2A (the official `a2a-sdk`, in the `a2a` extra) as if it were local.

    shouter = RemoteAgent("http://127.0.0.1:9000/", name="shouter")
    flow = Sequential("flow", [draft, shouter, publish])

Each hop is a journaled step of its own, so a run resumed after a crash picks up where it
was and never sends the same work twice:

    {name}.card    fetch the agent card and pin it (see below); later steps use the pinned card
    {name}.send    send the input; the message id is derived from the run and the step, and
                   the send does not wait for the work: it returns the remote task's id
    {name}.poll    wait for the task to finish or to ask for input (a crash here polls again)
    {name}.input   the remote asks for input (`input-required`): the podium run waits for a
                   person, like `HumanAgent` (`podium answer RUN '"blue"'`), ...
    {name}.reply   ... and the answer goes back to the same remote task
    {name}.cancel  a person rejected the question instead: the remote task is canceled

Identity: the card is pinned at the first call of each run. By default the endpoint the card
names must be on the origin (scheme, host, port) of `url`; `pin_url=` requires that exact
endpoint, `card_sha256=` that exact card (`podium a2a card URL` prints its digest). A card
that does not match stops the call with `PolicyDeniedError` (rule `a2a.pin`), never retried.

Trust: what the remote says is untrusted content (the `untrusted` mark: with containment on,
`podium.runtime.taint` labels the output and whatever derives from it). Trust can be lowered
while things run, for every call made from then on, in any process on the store:
`podium a2a trust NAME approval` (each call waits for a person's approval first) or `denied`
(each call is refused, rule `a2a.trust`); `untrusted` is the default and the most a remote
gets. `agent.lower_trust(level)` does the same for this process.

Errors: a connection that breaks, a timeout or a 5xx is `ProviderError` (transient: the
hop's retry policy retries it; the call as a whole is never retried, which would send the
work again); a remote that refuses a request (an A2A error) is a
`RunError`; a remote task that fails, is rejected or cancelled fails the call with a
`RunError` naming the remote's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from podium.agents.base import AgentBase
from podium.agents.human import HumanAgent, HumanApproval
from podium.agents.kinds import Builder, Loc, RetrySpec, Spec, register
from podium.core.bounds import SECONDS
from podium.core.choices import choice
from podium.core.serde import to_plain
from podium.errors import PolicyDeniedError, ProviderError, RejectedError, RunError, UsageError
from podium.runtime.policies import NO_RETRY, Retry

if TYPE_CHECKING:
    from podium.runtime.context import RunContext

__all__ = [
    "TRUST_KV",
    "RemoteAgent",
    "RemoteSpec",
    "Trust",
    "card_digest",
    "lower_trust",
    "set_trust",
]

TRUST_KV = "a2a.trust"  # the store's key-value namespace: agent name -> trust level
WELL_KNOWN = ".well-known/agent-card.json"


class Trust(StrEnum):
    """How far a remote agent is trusted, from most to least."""

    UNTRUSTED = "untrusted"  # calls go; what comes back is untrusted content
    APPROVAL = "approval"  # each call waits for a person's approval first
    DENIED = "denied"  # each call is refused


_ORDER = {Trust.UNTRUSTED: 0, Trust.APPROVAL: 1, Trust.DENIED: 2}


def lower(a: Trust, b: Trust) -> Trust:
    """The lower of two trust levels."""
    return a if _ORDER[a] >= _ORDER[b] else b


# states of a remote task, as the SDK names them, shortened ----------------------------------
_WORKING = frozenset({"submitted", "working", "unspecified"})
_ENDED = frozenset({"completed", "failed", "canceled", "rejected"})


def _sdk() -> Any:
    """The `a2a` package, or a `UsageError` naming the extra."""
    try:
        import a2a.client

        return a2a
    except ImportError as e:
        raise UsageError.missing_extra("RemoteAgent", "a2a", e) from None


def _json_format() -> Any:
    """protobuf's JSON mapping (the SDK's types are protobuf messages)."""
    from google.protobuf import json_format  # type: ignore[import-untyped]

    return json_format


def _card_json(card: Any) -> dict[str, Any]:
    plain: dict[str, Any] = _json_format().MessageToDict(card)
    return plain


def card_digest(card: dict[str, Any]) -> str:
    """The sha256 of a card (as JSON, without its signatures): keys sorted, no spaces. What
    `card_sha256=` pins."""
    unsigned = {k: v for k, v in card.items() if k != "signatures"}
    body = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


def _endpoint(card: dict[str, Any]) -> str:
    """The JSON-RPC endpoint a card names (the first, as the SDK's client picks it)."""
    for interface in card.get("supportedInterfaces", []):
        if interface.get("protocolBinding", "JSONRPC") == "JSONRPC" and interface.get("url"):
            return str(interface["url"])
    raise RunError(f"agent card {card.get('name')!r} names no JSON-RPC endpoint")


def _transport(name: str, e: BaseException) -> BaseException:
    """An SDK or network error as podium's: transient ones (`ProviderError`) are retried."""
    import httpx
    from a2a.client.errors import A2AClientError, AgentCardResolutionError
    from a2a.utils.errors import InternalError

    what = f"remote agent {name!r}: {type(e).__name__}: {e}"
    status = getattr(e, "status_code", None)
    if isinstance(e.__cause__, httpx.HTTPStatusError):
        status = e.__cause__.response.status_code
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return RunError(what)  # refused for good: asking again gets the same answer
    if isinstance(e, AgentCardResolutionError | A2AClientError | InternalError):
        return ProviderError(what, status=status)
    if isinstance(e, httpx.TransportError):
        return ProviderError(what)
    return RunError(what)


class _Step(AgentBase[Any, Any]):
    """One hop to the remote, journaled as a step of its own."""

    untrusted = True  # what a remote returns is its own words

    def __init__(self, owner: RemoteAgent, what: str, description: str) -> None:
        self._setup(f"{owner.name}.{what}", description=description, retry=owner.hop_retry)
        self.owner = owner


class _PinCard(_Step):
    async def run(self, input: Any, ctx: RunContext) -> dict[str, Any]:
        owner = self.owner
        _sdk()
        import httpx
        from a2a.client import A2ACardResolver

        try:
            async with httpx.AsyncClient(
                timeout=owner.http_timeout, headers=owner.headers()
            ) as http:
                card = await A2ACardResolver(http, owner.url).get_agent_card()
        except Exception as e:
            raise _transport(owner.name, e) from e
        plain = _card_json(card)
        owner.check_pin(plain)
        return {"card": plain, "sha256": card_digest(plain), "endpoint": _endpoint(plain)}


class _Send(_Step):
    async def run(self, input: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        a2a = _sdk()
        pb = a2a.types.a2a_pb2
        # The same step of the same run sends the same message id: a peer that deduplicates
        # by it (podium's server does) takes a resend after a crash as the first send.
        seed = f"{ctx.run_id}\x00{ctx.key}".encode()
        message = pb.Message(
            message_id="podium-" + hashlib.sha256(seed).hexdigest()[:32],
            role=pb.Role.ROLE_USER,
            parts=[to_part(input["value"])],
            task_id=input.get("task_id") or "",
            context_id=input.get("context_id") or "",
        )
        request = pb.SendMessageRequest(
            message=message, configuration=pb.SendMessageConfiguration(return_immediately=True)
        )
        async with self.owner.client(input["pinned"]) as client:
            try:
                async for response in client.send_message(request):
                    if response.HasField("message"):
                        return _from_message(response.message)
                    return _summary(response.task)
            except Exception as e:
                raise _transport(self.owner.name, e) from e
        raise RunError(f"remote agent {self.owner.name!r} answered nothing to a message")


class _Poll(_Step):
    async def run(self, input: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        a2a = _sdk()
        request = a2a.types.a2a_pb2.GetTaskRequest(id=input["task_id"])
        async with self.owner.client(input["pinned"]) as client:
            while True:
                try:
                    task = _summary(await client.get_task(request))
                except Exception as e:
                    raise _transport(self.owner.name, e) from e
                if task["state"] not in _WORKING:
                    return task
                await asyncio.sleep(self.owner.poll_interval)


class _Cancel(_Step):
    async def run(self, input: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
        a2a = _sdk()
        from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError

        request = a2a.types.a2a_pb2.CancelTaskRequest(id=input["task_id"])
        async with self.owner.client(input["pinned"]) as client:
            try:
                return _summary(await client.cancel_task(request))
            except (TaskNotCancelableError, TaskNotFoundError) as e:
                return {"id": input["task_id"], "state": "not canceled", "text": str(e)}
            except Exception as e:
                raise _transport(self.owner.name, e) from e


class RemoteAgent(AgentBase[Any, Any]):
    """An A2A agent at `url` (its base: the card is at `url/.well-known/agent-card.json`),
    called as a podium agent. See the module for steps, pinning, trust and errors.

    `name` defaults to the URL's host and port (`127.0.0.1-9000`). `token_env` names an
    environment variable whose value goes as `Authorization: Bearer ...` on every request.
    `retry` is the retry policy of each hop (the runtime's by default); the call as a whole
    is never retried, since a second attempt would send the work again. `timeout` bounds the
    whole call. The input goes as a text part when it is a string, else as a data part
    (JSON); the output is the text of the task's artifacts, or their data when an artifact
    holds one data part.
    """

    untrusted = True  # podium.runtime.taint: a remote peer's output is untrusted content

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        description: str = "",
        pin_url: str | None = None,
        card_sha256: str | None = None,
        trust: Trust | str = Trust.UNTRUSTED,
        poll_interval: float = 0.2,
        http_timeout: float = 30.0,
        token_env: str | None = None,
        timeout: float | None = None,
        retry: Retry | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"RemoteAgent: url {url!r} must be an http:// or https:// URL")
        if name is None:
            name = f"{parts.hostname}-{parts.port}" if parts.port else parts.hostname
        # Never retried whole: a second attempt would send the work again. `retry` applies to
        # each hop instead (the card, a send, a poll), and `timeout` bounds the whole call.
        self._setup(
            name,
            timeout=timeout,
            retry=NO_RETRY,
            description=description or f"the A2A agent at {url}",
        )
        self.hop_retry = retry
        self.url = url
        self.pin_url = pin_url
        if card_sha256 is not None and (
            len(card_sha256) != 64 or any(c not in "0123456789abcdef" for c in card_sha256)
        ):
            raise UsageError(f"RemoteAgent {name!r}: card_sha256 must be 64 lowercase hex digits")
        self.card_sha256 = card_sha256
        self.trust = choice(Trust, f"RemoteAgent {name!r}", "trust", trust)
        SECONDS.check(f"RemoteAgent {name!r}", "poll_interval", poll_interval)
        SECONDS.check(f"RemoteAgent {name!r}", "http_timeout", http_timeout)
        self.poll_interval = poll_interval
        self.http_timeout = http_timeout
        if token_env is not None and not token_env.strip():
            raise UsageError(f"RemoteAgent {name!r}: token_env must name an environment variable")
        self.token_env = token_env
        self._card = _PinCard(self, "card", "fetch and pin the agent card")
        self._send = _Send(self, "send", "send a message to the remote agent")
        self._poll = _Poll(self, "poll", "wait for the remote task")
        self._reply = _Send(self, "reply", "send a person's answer to the remote task")
        self._cancel = _Cancel(self, "cancel", "cancel the remote task a person turned down")
        self._ask = HumanAgent(
            f"{name}.input", question=_prompt, answer_type=Any, description="the remote asks"
        )
        self._approval = HumanApproval(
            f"{name}.approval", prompt=f"Call the remote agent {name!r} at {url}?"
        )

    # trust -----------------------------------------------------------------------------------
    def lower_trust(self, level: Trust | str) -> Trust:
        """Lower this agent's trust for every call made from now on in this process (a higher
        level than the present one changes nothing); the level now in force."""
        wanted = choice(Trust, f"RemoteAgent {self.name!r}", "trust", level)
        self.trust = lower(self.trust, wanted)
        return self.trust

    async def trust_now(self, ctx: RunContext) -> Trust:
        """The trust in force: the lower of this agent's and the store's (`podium a2a trust`)."""
        level = self.trust
        kv = ctx.kv
        stored = None if kv is None else await kv.get(TRUST_KV, self.name)
        if stored in _ORDER:
            level = lower(level, Trust(stored))
        return level

    def check_pin(self, card: dict[str, Any]) -> None:
        """Refuse a card that is not the one pinned (`PolicyDeniedError`, rule `a2a.pin`)."""
        endpoint = _endpoint(card)
        if self.pin_url is not None and endpoint != self.pin_url:
            self._deny(f"its card names the endpoint {endpoint}, not the pinned {self.pin_url}")
        if self.pin_url is None and _origin(endpoint) != _origin(self.url):
            self._deny(f"its card names the endpoint {endpoint}, off the origin of {self.url}")
        if self.card_sha256 is not None and card_digest(card) != self.card_sha256:
            self._deny(f"its card's sha256 is {card_digest(card)}, not the pinned one")

    def _deny(self, why: str, rule: str = "a2a.pin") -> None:
        raise PolicyDeniedError(
            f"remote agent {self.name!r} at {self.url}: {why} ({rule})",
            agent=self.name,
            rule=rule,
            reason=why,
        )

    # the SDK's client ------------------------------------------------------------------------
    def client(self, pinned: dict[str, Any]) -> Any:
        """A client for the pinned card (an async context manager)."""
        return _Client(pinned["card"], self.http_timeout, self.headers())

    def headers(self) -> dict[str, str]:
        """What every request carries: `Authorization: Bearer $TOKEN_ENV` when `token_env`
        names a variable. Read at each call, never journaled nor kept."""
        if self.token_env is None:
            return {}
        token = os.environ.get(self.token_env)
        if not token:
            raise UsageError(
                f"remote agent {self.name!r}: the environment variable {self.token_env} "
                "(its token_env) is not set"
            )
        return {"Authorization": f"Bearer {token}"}

    # the call --------------------------------------------------------------------------------
    async def run(self, input: Any, ctx: RunContext) -> Any:
        level = await self.trust_now(ctx)
        if level == Trust.DENIED:
            self._deny("its trust is lowered to denied (podium a2a trust)", rule="a2a.trust")
        if level == Trust.APPROVAL:
            input = await ctx.call(self._approval, input)
        pinned = await ctx.call(self._card, None)
        task = await ctx.call(self._send, {"pinned": pinned, "value": to_plain(input)})
        while True:
            state = task["state"]
            if state in _WORKING:
                task = await ctx.call(self._poll, {"pinned": pinned, "task_id": task["id"]})
            elif state == "input_required":
                try:
                    answer = await ctx.call(self._ask, {"prompt": task["text"], "task": task["id"]})
                except RejectedError:  # no answer: the remote task is not left waiting
                    with contextlib.suppress(RunError):
                        await ctx.call(self._cancel, {"pinned": pinned, "task_id": task["id"]})
                    raise
                reply = {"task_id": task["id"], "context_id": task["context_id"]}
                task = await ctx.call(
                    self._reply, {"pinned": pinned, "value": to_plain(answer), **reply}
                )
            elif state == "completed":
                return task["output"]
            else:
                why = task["text"] or "no reason given"
                raise RunError(
                    f"remote agent {self.name!r}: its task {task['id']} is {state}: {why}"
                )


def _prompt(request: dict[str, Any]) -> str:
    return str(request.get("prompt") or "the remote agent asks for input")


class _Client:
    """The SDK's client for a pinned card, with an HTTP client of its own."""

    def __init__(self, card: dict[str, Any], timeout: float, headers: dict[str, str]) -> None:
        self.card = card
        self.timeout = timeout
        self.headers = headers

    async def __aenter__(self) -> Any:
        import httpx
        from a2a.client import ClientConfig, ClientFactory
        from a2a.types.a2a_pb2 import AgentCard

        self.http = httpx.AsyncClient(timeout=self.timeout, headers=self.headers)
        card = _json_format().ParseDict(self.card, AgentCard(), ignore_unknown_fields=True)
        config = ClientConfig(streaming=False, polling=True, httpx_client=self.http)
        return ClientFactory(config).create(card)

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()


# protobuf <-> plain values -------------------------------------------------------------------
def to_part(value: Any) -> Any:
    from a2a.types.a2a_pb2 import Part
    from google.protobuf.struct_pb2 import Value  # type: ignore[import-untyped,unused-ignore]

    if isinstance(value, str):
        return Part(text=value)
    return Part(data=_json_format().ParseDict(value, Value()))


def parts_value(parts: Any) -> Any:
    """What a list of parts says: their text joined, or the data of a lone data part."""

    data = [_json_format().MessageToDict(p.data) for p in parts if p.HasField("data")]
    texts = [p.text for p in parts if p.HasField("text")]
    if len(data) == 1 and not texts:
        return _ints(data[0])
    if data:
        return [*texts, *map(_ints, data)]
    return "\n".join(texts)


def _ints(value: Any) -> Any:
    """JSON numbers travel as doubles in protobuf: a whole number comes back an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def state_name(state: int) -> str:
    """`TASK_STATE_INPUT_REQUIRED` -> `input_required`."""
    from a2a.types.a2a_pb2 import TaskState

    return str(TaskState.Name(state)).removeprefix("TASK_STATE_").lower()


def _summary(task: Any) -> dict[str, Any]:
    """What the journal keeps of a remote task."""
    parts = [p for a in task.artifacts for p in a.parts]
    message = task.status.message if task.status.HasField("message") else None
    return {
        "id": task.id,
        "context_id": task.context_id,
        "state": state_name(task.status.state),
        "text": parts_value(message.parts) if message is not None else "",
        "output": parts_value(parts) if parts else None,
    }


def _from_message(message: Any) -> dict[str, Any]:
    """A remote that answered with a message, not a task: that message is the output."""
    value = parts_value(message.parts)
    return {"id": "", "context_id": "", "state": "completed", "text": "", "output": value}


async def set_trust(store: Any, name: str, level: Trust | str) -> Trust:
    """Set a remote agent's trust in `store` (what `podium a2a trust` does): every call of the
    agent named `name`, in any process on the store, from now on."""
    wanted = choice(Trust, f"remote agent {name!r}", "trust", level)
    await store.kv_put(TRUST_KV, name, str(wanted))
    return wanted


async def lower_trust(store: Any, name: str, level: Trust | str) -> Trust:
    """Lower a remote agent's trust in `store`: the lower of the stored level and `level`
    (atomically, so two lowerings at once both hold); the level now in force."""
    from podium.runtime.kv import KeyValue

    wanted = choice(Trust, f"remote agent {name!r}", "trust", level)

    def fn(current: Any) -> str:
        now = Trust(current) if current in _ORDER else Trust.UNTRUSTED
        return str(lower(now, wanted))

    return Trust(await KeyValue(store).update(TRUST_KV, name, fn))


# `kind: remote`: an A2A agent (`podium.agents.remote`) ----------------------------------------
class RemoteSpec(Spec):
    """An agent in another process spoken to over A2A (`RemoteAgent`): its card is pinned,
    its output untrusted, and its trust may be lowered at run time (`podium a2a trust`)."""

    kind: Literal["remote"]
    name: str = Field(min_length=1)
    description: str = ""
    url: str = Field(min_length=1, description="the agent's base URL (its card is under it)")
    pin_url: str | None = Field(
        None, min_length=1, description="the exact endpoint its card must name"
    )
    card_sha256: str | None = Field(
        None, pattern="^[0-9a-f]{64}$", description="the card's digest (`podium a2a card URL`)"
    )
    trust: Literal["untrusted", "approval", "denied"] = Field(
        "untrusted", description="`approval`: a person approves each call; `denied`: refused"
    )
    poll_interval: float = SECONDS.field(0.2, description="seconds between polls of its task")
    token_env: str | None = Field(
        None, min_length=1, description="an environment variable holding a bearer token to send"
    )
    retry: RetrySpec | None = None
    timeout: float | None = SECONDS.field(None)


def _build_remote(b: Builder, spec: RemoteSpec, loc: Loc) -> RemoteAgent | None:
    from podium.runtime.policies import Retry

    def make() -> RemoteAgent:
        return RemoteAgent(
            spec.url,
            name=spec.name,
            description=spec.description,
            pin_url=spec.pin_url,
            card_sha256=spec.card_sha256,
            trust=spec.trust,
            poll_interval=spec.poll_interval,
            token_env=spec.token_env,
            timeout=spec.timeout,
            retry=None if spec.retry is None else Retry(**spec.retry.model_dump()),
        )

    return b.construct(loc, make)


register(RemoteSpec, _build_remote, draws=RemoteAgent, shape="[[]]", agent=True)
