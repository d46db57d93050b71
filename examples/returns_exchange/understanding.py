"""Reading the customer's message: a real model when `PODIUM_MODEL` names one, else a scripted
model that reads the text with regular expressions, so the example runs with no provider.

Both answer the same structured output (`ReturnRequest`), so nothing downstream can tell
them apart, except the run's output, which says which one it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from examples.returns_exchange.schemas import Condition, Reason, ReturnRequest
from podium.core.tools import ToolSpec
from podium.models.base import Message, Model, OutputSchema
from podium.models.scripted import ScriptedModel
from podium.models.settings import resolve_model

SCRIPTED_LABEL = "scripted (no PODIUM_MODEL set)"

INSTRUCTIONS = """\
You read customer messages for an outdoor clothing shop's returns desk. Extract the return or
exchange request: the order number, the item, why it goes back (too_small, too_large,
defective, wrong_item, changed_mind or other) with the customer's words, the item's condition
(unused, used, defective or unknown), whether they want an exchange rather than a refund, and
the size or exact product code (like JKT-SUMMITPRO-L) they want instead. Use null for anything
the message does not say; never guess an order number."""

_ORDER = re.compile(r"(?:\border\b\s*(?:number|no\.?)?\s*#?\s*|#)(\d{3,})", re.IGNORECASE)
_SKU = re.compile(r"\b([A-Z]{2,}(?:-[A-Z0-9]+)+)\b")
_SIZE = re.compile(r"\bsize\s+(\d{1,2}(?:\.5)?|xxl|xl|xs|s|m|l)\b", re.IGNORECASE)
_ITEM = re.compile(
    r"\bmy\s+([a-z][a-z -]{1,40}?)(?=\s+(?:from|in|on|for|because|that|which|are|is)\b|[,.!;])",
    re.IGNORECASE,
)
_NOT_ITEMS = frozenset({"mind", "order", "money", "card", "account", "refund"})
_EXCHANGE = re.compile(r"\b(exchange|swap|replace|instead|different size)\b", re.IGNORECASE)
_REASON_PATTERNS: dict[Reason, str] = {
    "defective": r"\b(defective|broken|damaged|faulty|ripped|torn|leaks?|fell apart)\b",
    "too_small": r"\b(too (small|tight|short|narrow)|runs? small)\b",
    "too_large": r"\b(too (big|large|loose|long|wide)|runs? (big|large))\b",
    "wrong_item": r"\b(wrong (item|colou?r|product|model)|not what I ordered)\b",
    "changed_mind": r"\b(changed my mind|(do not|don't) (need|want|like)|no longer)\b",
}
_REASONS = [(code, re.compile(p, re.IGNORECASE)) for code, p in _REASON_PATTERNS.items()]
_UNUSED = re.compile(
    r"\b(unworn|unused|never (worn|used)|tags (still )?on|unopened|brand new)\b", re.I
)
_USED = re.compile(r"\b(worn|used|wore)\b", re.IGNORECASE)


def read_request(text: str) -> ReturnRequest:
    """The scripted reading of a message: the same fields a model would fill in."""
    order = _ORDER.search(text)
    sizes = _SIZE.findall(text)
    sku = next((s for s in _SKU.findall(text) if not s.startswith(("RMA-", "TCK-"))), None)
    reason: Reason = "other"
    detail = ""
    for code, pattern in _REASONS:
        found = pattern.search(text)
        if found:
            reason, detail = code, found.group(0)
            break
    item = next((m.strip() for m in _ITEM.findall(text) if m.strip() not in _NOT_ITEMS), None)
    new_size = sizes[-1].upper() if sizes else None
    return ReturnRequest(
        order_id=int(order.group(1)) if order else None,
        item=item,
        reason=reason,
        reason_detail=detail or text.strip()[:120],
        condition=_condition(text, reason),
        wants_exchange=bool(_EXCHANGE.search(text) or sku or new_size),
        new_size=new_size,
        new_sku=sku,
    )


def _condition(text: str, reason: Reason) -> Condition:
    if reason == "defective":
        return "defective"
    if _UNUSED.search(text):
        return "unused"
    return "used" if _USED.search(text) else "unknown"


def _answer(
    messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
) -> dict[str, Any]:
    """What the scripted model says: the last user message, read by `read_request`."""
    text = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return read_request(text).model_dump()


def scripted_reader() -> ScriptedModel:
    return ScriptedModel(_answer, name="scripted-returns-reader")


def choose_model(spec: str | Model | None = None) -> tuple[Model, str]:
    """The model to read messages with, and how the output names it.

    `spec` (or `PODIUM_MODEL`) names a real model; without one, or with `scripted`, the
    regex reader stands in and the label says so."""
    if spec is None:
        spec = os.environ.get("PODIUM_MODEL") or None
    if spec is None:
        return scripted_reader(), SCRIPTED_LABEL
    if isinstance(spec, str) and spec.strip().split(":", 1)[0] == "scripted":
        return scripted_reader(), f"scripted (PODIUM_MODEL={spec.strip()})"
    model = resolve_model(spec)
    assert model is not None  # spec is set, so resolve_model returns a model or raises
    return model, model.name
