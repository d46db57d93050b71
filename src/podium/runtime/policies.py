"""Per-call policies the door applies: how to retry, how long to wait.

Set them on an agent (`@agent(retry=..., timeout=...)`), on a runtime (defaults for every
call), or on one call (`ctx.call(agent, x, timeout=2)`); the nearest one wins.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from podium.core.bounds import ATTEMPTS, DELAY, Bound
from podium.errors import (
    BudgetExceededError,
    CircuitOpenError,
    PolicyDeniedError,
    RejectedError,
    RunLimitExceededError,
    StepError,
    TransientError,
    UsageError,
)

MULTIPLIER = Bound("a number >= 1", ge=1)  # a backoff that shrinks is not a backoff


@dataclass(frozen=True, slots=True)
class Retry:
    """Exponential backoff with full jitter.

    Only errors listed in `on` are retried: transient provider errors, timeouts and malformed
    model output by default. A bug in an agent (a `ValueError`, say) fails at once, and so do
    errors in `never`: misuse, a step that already failed for good below this one, a policy
    denial, an exhausted budget or run limit, an open circuit.
    """

    attempts: int = 3
    initial_delay: float = 0.2
    max_delay: float = 10.0
    multiplier: float = 2.0
    jitter: bool = True
    on: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)
    never: tuple[type[BaseException], ...] = (
        UsageError,
        StepError,
        RejectedError,
        PolicyDeniedError,
        BudgetExceededError,
        RunLimitExceededError,
        CircuitOpenError,
    )

    def __post_init__(self) -> None:
        ATTEMPTS.check("Retry", "attempts", self.attempts)
        DELAY.check("Retry", "initial_delay", self.initial_delay)
        DELAY.check("Retry", "max_delay", self.max_delay)
        MULTIPLIER.check("Retry", "multiplier", self.multiplier)

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        if attempt >= self.attempts or isinstance(error, self.never):
            return False
        return isinstance(error, self.on)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        return random.uniform(0.0, ceiling) if self.jitter else ceiling


NO_RETRY = Retry(attempts=1)
DEFAULT_RETRY = Retry()
