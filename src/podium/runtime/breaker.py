"""Circuit breakers: stop calling an agent or a model endpoint that keeps failing, and let the
fallback take over until it recovers.

    closed --N consecutive failures, or failure rate over a window--> open
    open --cool-down elapsed--> half-open (a limited number of probe calls)
    half-open --probe succeeds--> closed;  --probe fails--> open again

State lives on a board. By default every runtime in a process shares one `LocalBoard`, so all
runs of the process see the same circuits; with `PODIUM_REDIS_URL` set (or
`Runtime(breakers="redis://...")`) a `RedisBoard` shares them across processes and machines,
each transition done atomically in a Lua script. Pass a board of your own to isolate it.

The breaker sits outside the retry layer: one call that failed after all its retries counts
as one failure. Only errors that say something about the endpoint's health count (transient
provider errors, timeouts, connection errors); a bug in an agent does not open its circuit.
"""

from __future__ import annotations

import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from podium.core.clock import SYSTEM_CLOCK, Clock, clock_or_default
from podium.errors import CircuitOpenError, StepError, TransientError, UsageError

if TYPE_CHECKING:
    from podium.runtime.door import Call, Handler, Middleware


@dataclass(frozen=True, slots=True)
class Breaker:
    """When to open (`failures` in a row, or `failure_rate` over the last `window` calls once
    `min_calls` were seen), how long to stay open (`cooldown` seconds), how many probe calls
    to let through when half-open (`probes`)."""

    failures: int = 5
    failure_rate: float | None = None
    window: int = 20
    min_calls: int = 10
    cooldown: float = 30.0
    probes: int = 1
    on: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)

    def __post_init__(self) -> None:
        if self.failures < 1 or self.window < 1 or self.min_calls < 1 or self.probes < 1:
            raise UsageError("Breaker: failures, window, min_calls and probes must be >= 1")
        if self.failure_rate is not None and not 0.0 < self.failure_rate <= 1.0:
            raise UsageError("Breaker: failure_rate must be in (0, 1]")
        if self.cooldown < 0:
            raise UsageError("Breaker: cooldown must not be negative")

    def counts(self, error: BaseException) -> bool:
        """Whether an error says the endpoint is unhealthy."""
        if isinstance(error, StepError):
            error = error.cause
        return isinstance(error, self.on)


class Board(Protocol):
    """Where breaker state lives. `admit` raises `CircuitOpenError` or returns the state the call
    goes in with ("closed", "half_open" when it is a probe); `record` returns the transition it
    caused ("opened", "closed") or "" ."""

    async def admit(self, key: str, cfg: Breaker) -> str: ...

    async def record(self, key: str, cfg: Breaker, ok: bool) -> str: ...


@dataclass(slots=True)
class _Circuit:
    state: str = "closed"
    consecutive: int = 0
    opened_at: float = 0.0
    probes: int = 0
    outcomes: deque[bool] = field(default_factory=deque)


class LocalBoard:
    """Breaker state in this process; cool-downs run on `clock` (default: the real one)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock_or_default(clock)
        self._circuits: dict[str, _Circuit] = {}

    def state(self, key: str) -> str:
        c = self._circuits.get(key)
        return "closed" if c is None else c.state

    async def admit(self, key: str, cfg: Breaker) -> str:
        c = self._circuits.get(key)
        if c is None or c.state == "closed":
            return "closed"
        if c.state == "open":
            wait = c.opened_at + cfg.cooldown - self.clock.now()
            if wait > 0:
                raise CircuitOpenError(key, wait)
            c.state, c.probes = "half_open", 0
        if c.probes >= cfg.probes:
            raise CircuitOpenError(key, 0.0)
        c.probes += 1
        return "half_open"

    async def record(self, key: str, cfg: Breaker, ok: bool) -> str:
        c = self._circuits.setdefault(key, _Circuit())
        if c.state == "half_open":
            if ok:
                self._circuits[key] = _Circuit()
                return "closed"
            return self._trip(c)
        if c.state == "open":
            return ""
        c.outcomes.append(ok)
        while len(c.outcomes) > cfg.window:
            c.outcomes.popleft()
        if ok:
            c.consecutive = 0
            return ""
        c.consecutive += 1
        if c.consecutive >= cfg.failures or _rate_exceeded(c.outcomes, cfg):
            return self._trip(c)
        return ""

    def _trip(self, c: _Circuit) -> str:
        c.state, c.opened_at, c.probes = "open", self.clock.now(), 0
        return "opened"


def _rate_exceeded(outcomes: deque[bool], cfg: Breaker) -> bool:
    if cfg.failure_rate is None or len(outcomes) < cfg.min_calls:
        return False
    return outcomes.count(False) / len(outcomes) >= cfg.failure_rate


def breaker_key(call: Call) -> str:
    """Agents and tools by name; models by endpoint (`breaker_key` on the model step)."""
    return str(getattr(call.target, "breaker_key", None) or f"{call.kind}:{call.name}")


def breaker_middleware(board: Board, default: Breaker | None = None) -> Middleware:
    """The door's breaker slot: fail fast while open, count final outcomes, emit transitions."""

    async def breaker(call: Call, nxt: Handler) -> Any:
        cfg: Breaker | None = getattr(call.target, "breaker", None) or default
        if cfg is None:
            return await nxt(call)
        key = breaker_key(call)
        try:
            entered = await board.admit(key, cfg)
        except CircuitOpenError as e:
            call.run.emit("breaker.rejected", call.key, call.name, data={"circuit": key})
            raise StepError(call.name, call.key, e) from e
        if entered == "half_open":
            call.run.emit("breaker.half_open", call.key, call.name, data={"circuit": key})
        try:
            output = await nxt(call)
        except BaseException as e:
            if isinstance(e, Exception) and cfg.counts(e):
                await _note(board, call, key, cfg, ok=False)
            elif entered == "half_open":
                # the endpoint answered; what failed was not its health
                await _note(board, call, key, cfg, ok=True)
            raise
        await _note(board, call, key, cfg, ok=True)
        return output

    return breaker


async def _note(board: Board, call: Call, key: str, cfg: Breaker, *, ok: bool) -> None:
    transition = await board.record(key, cfg, ok)
    if transition:
        call.run.emit(f"breaker.{transition}", call.key, call.name, data={"circuit": key})


_process_board: LocalBoard | None = None
# Runtimes on a clock of their own (a test's `FakeClock`) share a board per clock: a circuit
# opened on one clock must not cool down by another's time.
_clock_boards: weakref.WeakKeyDictionary[Clock, LocalBoard] = weakref.WeakKeyDictionary()


def default_board(spec: Board | str | None = None, clock: Clock | None = None) -> Board:
    """The board a runtime uses: the one given, a `RedisBoard` for a `redis://` URL (or
    `PODIUM_REDIS_URL`), else the process's shared `LocalBoard` (one per clock, for runtimes
    on a clock other than the real one). A board made here reads `clock`."""
    import os

    if spec is not None and not isinstance(spec, str):
        return spec
    url = spec or os.environ.get("PODIUM_REDIS_URL")
    if url:
        from podium.runtime.breaker_redis import RedisBoard

        return RedisBoard(url, clock=clock)
    if clock is not None and clock is not SYSTEM_CLOCK:
        try:
            board = _clock_boards.get(clock)
            if board is None:
                board = _clock_boards[clock] = LocalBoard(clock)
        except TypeError:  # a clock that cannot be weakly referenced: a board of its own
            board = LocalBoard(clock)
        return board
    global _process_board
    if _process_board is None:
        _process_board = LocalBoard()
    return _process_board
