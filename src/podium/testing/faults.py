"""What to inject and when: provider errors by name, fault schedules, and the bookkeeping
shared by every faulty wrapper.

A schedule answers one question per call: which fault, if any, does call number `n` get?
`Rates` answers from its own seeded `random.Random` (one draw per call, so the same seed
gives the same sequence whatever the rates), `FailFirst` fails the first `n` calls, and
`Chaos` plays a fixed script. The wrappers in `podium.testing.wrappers` ask their schedule
before each call and record what they injected in `.stats` and `.faults`.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol, TypeAlias, runtime_checkable

from podium.errors import ModelError, ModelResponseError, ProviderError, TransientError, UsageError

FaultKind: TypeAlias = Literal["error", "hang", "malformed"]
KINDS: tuple[FaultKind, ...] = ("error", "hang", "malformed")

ErrorSpec: TypeAlias = BaseException | type[BaseException] | Callable[[], BaseException]
"""An exception to raise: an instance (a fresh copy is raised each time), a class (built with
a message naming the call), or a zero-argument function returning one."""


# -- provider errors by name ---------------------------------------------------------------
def rate_limited() -> ProviderError:
    """A 429 from a provider: transient, retried by default."""
    return ProviderError("429 Too Many Requests: rate limit reached (injected)", status=429)


def server_error(status: int = 503) -> ProviderError:
    """A 5xx from a provider: transient, retried by default."""
    if not 500 <= status <= 599:
        raise UsageError(f"server_error: status must be 5xx, got {status}")
    return ProviderError(f"{status} server error from provider (injected)", status=status)


def connection_reset() -> ProviderError:
    """The connection broke mid-request: transient, no HTTP status."""
    return ProviderError("connection reset by peer (injected)")


def auth_error() -> ModelError:
    """A 401: the provider refuses for good, so the door never retries it."""
    return ModelError("401 Unauthorized: invalid API key (injected)", status=401)


def malformed_output() -> ModelResponseError:
    """What a provider adapter raises for an answer it cannot parse: retried by default."""
    return ModelResponseError("model answered with malformed JSON (injected)")


def fresh_error(spec: ErrorSpec, message: str) -> BaseException:
    """A new exception from `spec`, so raising it twice never stacks tracebacks."""
    if isinstance(spec, BaseException):
        try:
            error = copy.copy(spec)
        except Exception:  # an exception whose __init__ cannot be replayed from its args
            error = spec
        error.__traceback__ = error.__cause__ = error.__context__ = None
        return error
    if isinstance(spec, type) and issubclass(spec, BaseException):
        return spec(message)
    made: object = spec()
    if not isinstance(made, BaseException):
        raise UsageError(f"error factory {spec!r} returned {made!r}, not an exception")
    return made


def check_error_spec(owner: str, spec: object) -> ErrorSpec:
    ok = isinstance(spec, BaseException) or callable(spec)
    if not ok:
        raise UsageError(f"{owner}: {spec!r} is not an exception, exception class or factory")
    return spec  # type: ignore[return-value]


# -- schedules -----------------------------------------------------------------------------
@runtime_checkable
class Schedule(Protocol):
    """Which fault call number `call` (1-based) gets; None lets the call through."""

    def draw(self, call: int) -> FaultKind | None: ...


class Rates:
    """Faults at random with the given probabilities, from a `random.Random(seed)` of its own.

    Exactly one draw per call: `[0, fail)` is an error, the next `hang` a hang, the next
    `malformed` a malformed answer, the rest passes.
    """

    def __init__(
        self,
        fail_rate: float = 0.0,
        hang_rate: float = 0.0,
        malformed_rate: float = 0.0,
        *,
        seed: int = 0,
        owner: str = "Rates",
    ) -> None:
        rates = {"fail_rate": fail_rate, "hang_rate": hang_rate, "malformed_rate": malformed_rate}
        for field, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise UsageError(f"{owner}: {field} must be between 0 and 1, got {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            raise UsageError(
                f"{owner}: fail_rate + hang_rate + malformed_rate must not exceed 1, "
                f"got {sum(rates.values()):g}"
            )
        self.fail_rate = fail_rate
        self.hang_rate = hang_rate
        self.malformed_rate = malformed_rate
        self.seed = seed
        self._rng = random.Random(seed)

    def draw(self, call: int) -> FaultKind | None:
        r = self._rng.random()
        if r < self.fail_rate:
            return "error"
        if r < self.fail_rate + self.hang_rate:
            return "hang"
        if r < self.fail_rate + self.hang_rate + self.malformed_rate:
            return "malformed"
        return None

    def __repr__(self) -> str:
        return (
            f"Rates(fail_rate={self.fail_rate}, hang_rate={self.hang_rate}, "
            f"malformed_rate={self.malformed_rate}, seed={self.seed})"
        )


class Chaos:
    """A fixed script of faults, one entry per call, then `then` (or nothing) after it.

    Chaos(["error", None, "hang"])            # call 1 fails, 2 passes, 3 hangs
    Chaos(["error"] * 3, then=Rates(0.1))     # three failures, then 10% at random
    """

    def __init__(self, script: Sequence[FaultKind | None], *, then: Schedule | None = None):
        for i, kind in enumerate(script, 1):
            if kind is not None and kind not in KINDS:
                raise UsageError(f"Chaos: entry #{i} is {kind!r}; use one of {KINDS} or None")
        self.script = tuple(script)
        self.then = then

    def draw(self, call: int) -> FaultKind | None:
        if call <= len(self.script):
            return self.script[call - 1]
        return self.then.draw(call) if self.then is not None else None

    def __repr__(self) -> str:
        return f"Chaos({list(self.script)!r}, then={self.then!r})"


class FailFirst:
    """Fail the first `n` calls, then let every call through: the usual shape of a resume
    test. Use it as a schedule (`fail_first(2, agent)`), or call it inside your own code:

        boom = FailOnce(error=RuntimeError("disk full"))

        @agent
        def save(x: int) -> int:
            boom()          # raises the first time only
            return x
    """

    def __init__(
        self, n: int = 1, *, error: ErrorSpec | None = None, kind: FaultKind = "error"
    ) -> None:
        if n < 0:
            raise UsageError(f"FailFirst: n must not be negative, got {n}")
        if kind not in KINDS:
            raise UsageError(f"FailFirst: kind must be one of {KINDS}, got {kind!r}")
        self.n = n
        self.kind = kind
        self.error = None if error is None else check_error_spec("FailFirst", error)
        self.calls = 0

    @property
    def failed(self) -> int:
        """How many calls this guard has failed so far."""
        return min(self.calls, self.n)

    def draw(self, call: int) -> FaultKind | None:
        return self.kind if call <= self.n else None

    def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.n:
            message = f"injected failure {self.calls} of {self.n}"
            if self.error is None:
                raise ProviderError(f"503 {message}", status=503)
            raise fresh_error(self.error, message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, calls={self.calls})"


class FailOnce(FailFirst):
    """`FailFirst(1)`: the first call fails, every later one passes."""

    def __init__(self, *, error: ErrorSpec | None = None, kind: FaultKind = "error") -> None:
        super().__init__(1, error=error, kind=kind)


# -- bookkeeping ---------------------------------------------------------------------------
class Fault(NamedTuple):
    """One injected fault: which call (1-based) got it, and what kind."""

    call: int
    kind: FaultKind


@dataclass(slots=True)
class FaultStats:
    """Counts of what a faulty wrapper did: calls seen, and each fault injected."""

    calls: int = 0
    errors: int = 0
    hangs: int = 0
    malformed: int = 0

    @property
    def injected(self) -> int:
        return self.errors + self.hangs + self.malformed

    @property
    def passed(self) -> int:
        """Calls handed to the wrapped target untouched (or, with `when="after"`, before the
        fault)."""
        return self.calls - self.injected


_FIELD: dict[FaultKind, str] = {"error": "errors", "hang": "hangs", "malformed": "malformed"}


class Injector:
    """The per-wrapper state: its schedule, its errors, and what it has injected so far."""

    def __init__(
        self,
        owner: str,
        schedule: Schedule,
        errors: Sequence[ErrorSpec],
        *,
        hang_for: float,
        kinds: tuple[FaultKind, ...] = KINDS,
    ) -> None:
        if hang_for <= 0:
            raise UsageError(f"{owner}: hang_for must be positive, got {hang_for}")
        if not isinstance(schedule, Schedule):
            raise UsageError(f"{owner}: schedule {schedule!r} has no draw(call) method")
        self.owner = owner
        self.schedule = schedule
        self.errors = tuple(check_error_spec(owner, e) for e in errors)
        self.hang_for = hang_for
        self.kinds = kinds
        self.stats = FaultStats()
        self.faults: list[Fault] = []
        self._raised = 0

    def next(self) -> tuple[int, FaultKind | None]:
        """Count a call and ask the schedule what it gets."""
        self.stats.calls += 1
        call = self.stats.calls
        kind = self.schedule.draw(call)
        if kind is None:
            return call, None
        if kind not in self.kinds:
            raise UsageError(f"{self.owner}: cannot inject {kind!r} (it injects {self.kinds})")
        field = _FIELD[kind]
        setattr(self.stats, field, getattr(self.stats, field) + 1)
        self.faults.append(Fault(call, kind))
        return call, kind

    def error(self, call: int) -> BaseException:
        """The next error in rotation, with a note saying who injected it and when."""
        if not self.errors:
            error: BaseException = TransientError(f"{self.owner}: injected failure at call #{call}")
        else:
            spec = self.errors[self._raised % len(self.errors)]
            error = fresh_error(spec, f"{self.owner}: injected failure at call #{call}")
        self._raised += 1
        error.add_note(f"injected by podium.testing: {self.owner}, call #{call}")
        return error

    async def hang(self, call: int) -> None:
        """Hang like a stuck connection; the door's timeout is meant to cut this short. If
        nothing does, the client gives up and the call fails as a transient error."""
        await asyncio.sleep(self.hang_for)
        raise ProviderError(
            f"{self.owner}: no answer after {self.hang_for:g}s at call #{call} (injected hang)"
        )
