"""@tool: schemas from signatures and docstrings, validation at the door, ToolContext."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from podium import HandoffTypeError, Retry, RunContext, Runtime, StepError, agent
from podium.core.tools import ToolContext, ToolSpec
from podium.errors import OutputTypeError, UsageError
from podium.tools import Tool, parse_docstring, tool

FAST = Retry(attempts=3, initial_delay=0.0)


class Item(BaseModel):
    sku: str
    qty: int = 1


class Receipt(BaseModel):
    order_id: int
    refunded: float


@tool
async def refund(order_id: int, items: list[Item], ctx: ToolContext, note: str = "") -> Receipt:
    """Refund part of an order.

    Used when a customer
    sends goods back.

    Args:
        order_id: The order to refund.
        items (list[Item]): Which items,
            with quantities.
        note: Free text for the ledger.

    Returns:
        The receipt.
    """
    return Receipt(order_id=order_id, refunded=sum(i.qty for i in items) * 2.5)


def test_schema_comes_from_signature_and_docstring() -> None:
    assert refund.name == "refund"
    assert (
        refund.description == "Refund part of an order.\n\nUsed when a customer sends goods back."
    )
    params = refund.parameters
    assert params["type"] == "object"
    assert params["required"] == ["order_id", "items"]
    assert set(params["properties"]) == {"order_id", "items", "note"}  # no ctx
    assert params["properties"]["order_id"] == {
        "type": "integer",
        "description": "The order to refund.",
    }
    assert params["properties"]["items"]["description"] == "Which items, with quantities."
    assert params["properties"]["items"]["items"] == {"$ref": "#/$defs/Item"}
    assert "Item" in params["$defs"]
    assert params["properties"]["note"]["default"] == ""
    assert params["additionalProperties"] is False
    assert refund.spec == ToolSpec("refund", refund.description, params)
    assert refund.effect is False and refund.idempotent is True


def test_decorator_options_are_kept() -> None:
    def undo(order_id: int) -> None: ...

    def check(order_id: int) -> bool:
        return True

    @tool(
        name="charge_card",
        description="Charge the card.",
        effect=True,
        idempotent=False,
        reconcile=check,
        compensate=undo,
        retry=FAST,
        timeout=3.0,
    )
    def charge(order_id: int) -> str:
        """Ignored docstring."""
        return "ok"

    assert isinstance(charge, Tool)
    assert charge.name == "charge_card"
    assert charge.description == "Charge the card."
    assert (charge.effect, charge.idempotent) == (True, False)
    assert charge.reconcile is check and charge.compensate is undo
    assert charge.retry is FAST and charge.timeout == 3.0


def test_numpy_docstring() -> None:
    doc = """Look an order up.

    Parameters
    ----------
    order_id : int
        Which order.
    verbose : bool, optional
        Whether to include
        the history.

    Returns
    -------
    dict
        The order.
    """
    import inspect

    summary, params = parse_docstring(inspect.cleandoc(doc))
    assert summary == "Look an order up."
    assert params == {"order_id": "Which order.", "verbose": "Whether to include the history."}


def test_check_input_validates_and_coerces() -> None:
    args = refund.check_input({"order_id": "7", "items": [{"sku": "a", "qty": 2}]})
    assert args == {"order_id": 7, "items": [Item(sku="a", qty=2)], "note": ""}
    with pytest.raises(ValidationError):
        refund.check_input({"order_id": "seven", "items": []})
    with pytest.raises(ValidationError):
        refund.check_input({"order_id": 1, "items": [], "bogus": 1})  # made-up argument
    with pytest.raises(ValidationError):
        refund.check_input("not a dict")


def test_bad_signatures_are_refused() -> None:
    def star(*args: int) -> int:
        return 0

    with pytest.raises(UsageError, match="named parameter"):
        tool(star)
    with pytest.raises(UsageError, match="tool name"):
        tool(name="bad name")(lambda: 1)


async def test_use_through_the_door_injects_context() -> None:
    seen: list[ToolContext] = []

    @tool
    async def lookup(order_id: int, ctx: ToolContext) -> dict[str, Any]:
        """Find an order."""
        seen.append(ctx)
        return {"id": order_id}

    @agent
    async def clerk(order_id: int, ctx: RunContext) -> Receipt:
        await ctx.use(lookup, {"order_id": order_id})
        result: Receipt = await ctx.use(refund, {"order_id": order_id, "items": [{"sku": "x"}]})
        return result

    rt = Runtime("memory://", retry=FAST)
    result = await rt.run(clerk, 3)
    assert result.ok, result.error
    assert result.output == Receipt(order_id=3, refunded=2.5)
    (tc,) = seen
    assert tc == ToolContext(
        result.run_id, "/clerk/lookup#0", f"{result.run_id}:/clerk/lookup#0", 1, {"order_id": 3}
    )
    steps = {s.key: s for s in await rt.steps(result.run_id)}
    assert steps["/clerk/lookup#0"].kind == "tool"
    assert steps["/clerk/refund#0"].output == Receipt(order_id=3, refunded=2.5)


async def test_bad_args_are_a_handoff_type_error_naming_tool_and_field() -> None:
    @agent
    async def clerk(x: int, ctx: RunContext) -> Any:
        return await ctx.use(refund, {"order_id": "nope", "items": []})

    result = await Runtime("memory://", retry=FAST).run(clerk, 1)
    assert not result.ok
    assert isinstance(result.exception, StepError)
    cause = result.exception.cause
    assert isinstance(cause, HandoffTypeError)
    assert cause.receiver == "refund" and "order_id" in str(cause)


async def test_output_checked_against_return_annotation() -> None:
    @tool
    def wrong() -> int:
        """Claims an int."""
        return "many"  # type: ignore[return-value]

    @agent
    async def clerk(x: int, ctx: RunContext) -> Any:
        return await ctx.use(wrong)

    result = await Runtime("memory://", retry=FAST).run(clerk, 1)
    assert isinstance(result.exception, StepError)
    assert isinstance(result.exception.cause, OutputTypeError)
    assert "wrong" in str(result.exception.cause)


async def test_sync_tools_inline_and_in_a_thread_and_retry_sees_attempts() -> None:
    threads: list[str] = []
    attempts: list[int] = []

    @tool(thread=True)
    def blocking(n: int) -> int:
        threads.append(threading.current_thread().name)
        return n * 2

    @tool(retry=FAST)
    def flaky(ctx: ToolContext) -> str:
        attempts.append(ctx.attempt)
        if ctx.attempt < 2:
            from podium import TransientError

            raise TransientError("try again")
        return ctx.idempotency_key

    @agent
    async def clerk(x: int, ctx: RunContext) -> list[Any]:
        return [await ctx.use(blocking, {"n": x}), await ctx.use(flaky)]

    result = await Runtime("memory://").run(clerk, 4)
    assert result.ok, result.error
    assert result.output == [8, f"{result.run_id}:/clerk/flaky#0"]
    assert threads and threads[0] != threading.main_thread().name
    assert attempts == [1, 2]


class Opaque:
    pass


def test_parameters_that_are_not_json_are_refused_naming_the_tool() -> None:
    def handle(thing: Opaque) -> None: ...

    with pytest.raises(UsageError, match=r"tool 'handle'.*JSON Schema"):
        tool(handle)
