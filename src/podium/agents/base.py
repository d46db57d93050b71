"""What an agent is: anything with a `name` and `async run(input, ctx) -> output`.

`AgentBase` holds the optional fields the door reads (types, retry, timeout); podium's own
agents and patterns carry it, and a user's class may too, or may skip it and only satisfy
the `Agent` protocol (then nothing is validated for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from podium.core.bounds import SECONDS
from podium.core.names import check_name
from podium.core.serde import Validator, validator_for
from podium.errors import UsageError

if TYPE_CHECKING:
    from podium.governance.guardrails import Guardrail
    from podium.runtime.breaker import Breaker
    from podium.runtime.budget import Budget
    from podium.runtime.context import RunContext
    from podium.runtime.policies import Retry

In = TypeVar("In")
Out = TypeVar("Out")
In_contra = TypeVar("In_contra", contravariant=True)
Out_co = TypeVar("Out_co", covariant=True)


@runtime_checkable
class Agent(Protocol[In_contra, Out_co]):
    name: str

    async def run(self, input: In_contra, ctx: RunContext) -> Out_co: ...


def is_agent(obj: object) -> bool:
    """Anything with a `name` and a `run` is an agent (the protocol is structural)."""
    return hasattr(obj, "name") and hasattr(obj, "run")


class AgentBase(Generic[In, Out]):
    """Fields the door reads from an agent; set once, at construction."""

    name: str
    description: str
    input_type: Any
    output_type: Any
    retry: Retry | None
    timeout: float | None
    check_input: Validator | None
    check_output: Validator | None
    fallbacks: tuple[Any, ...] = ()
    breaker: Breaker | None = None
    budget: Budget | None = None  # limits on this agent and everything it calls
    roles: tuple[str, ...] = ()  # the roles whose grants a policy gives its tool calls
    # checks of the value crossing the door into and out of the agent (podium.governance)
    input_guardrails: tuple[Guardrail, ...] = ()
    output_guardrails: tuple[Guardrail, ...] = ()
    guarded: bool = False  # has guardrails: its calls go through the door's contain slot

    def _guardrails(self, input: Sequence[Any] | None, output: Sequence[Any] | None) -> None:
        from podium.governance.guardrails import as_guardrails

        self.input_guardrails = as_guardrails(input, f"agent {self.name!r}", "input")
        self.output_guardrails = as_guardrails(output, f"agent {self.name!r}", "output")
        self.guarded = bool(self.input_guardrails or self.output_guardrails)

    def _setup(
        self,
        name: str,
        *,
        input_type: Any = Any,
        output_type: Any = Any,
        retry: Retry | None = None,
        timeout: float | None = None,
        description: str = "",
        fallbacks: Sequence[Any] = (),
        breaker: Breaker | None = None,
        budget: Budget | None = None,
        roles: Sequence[str] = (),
    ) -> None:
        self.name = check_name(name)
        if isinstance(roles, str) or not all(isinstance(r, str) and r for r in roles):
            raise UsageError(f"agent {name!r}: roles must be a list of role names, got {roles!r}")
        self.roles = tuple(roles)
        for fb in fallbacks:
            if not hasattr(fb, "name") or not hasattr(fb, "run"):
                raise UsageError(f"agent {name!r}: fallback {fb!r} is not an agent")
        self.fallbacks = tuple(fallbacks)
        self.breaker = breaker
        if budget is not None:
            from podium.runtime.budget import Budget

            if not isinstance(budget, Budget):
                raise UsageError(f"agent {name!r}: budget must be a podium.Budget, got {budget!r}")
            self.budget = budget
        self.description = description
        self.input_type = input_type
        self.output_type = output_type
        SECONDS.check_optional(f"agent {name!r}", "timeout", timeout)
        self.retry = retry
        self.timeout = timeout
        self.check_input = validator_for(input_type)
        self.check_output = validator_for(output_type)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
