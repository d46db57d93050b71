"""Python agents and functions the YAML workflows in this folder refer to (`agents.py:name`).

Each is small and deterministic, so every workflow here runs offline and in the test suite.
"""

from __future__ import annotations

from typing import Any

from podium import ChatMessage, ChatReply, ChatTurn, HandoffTo, agent
from podium.patterns.magentic import (
    AnswerRequest,
    LedgerRequest,
    ProgressLedger,
    ProgressRequest,
    TaskLedger,
)
from podium.patterns.supervisor import Plan, PlanRequest, Subtask, SynthesisRequest


# sequential, parallel, router ---------------------------------------------------------------
@agent
def clean(text: str) -> str:
    return " ".join(text.split())


@agent
def shout(text: str) -> str:
    return text.upper()


@agent
def inventory(order: Any) -> dict[str, int]:
    return {"in_stock": 3}


@agent
def pricing(order: Any) -> dict[str, float]:
    return {"price": 9.5}


@agent
def billing(text: str) -> str:
    return "billing desk: " + text


@agent
def returns(text: str) -> str:
    return "returns desk: " + text


def mentions_refund(text: Any) -> bool:
    return "refund" in str(text).lower()


# supervisor ---------------------------------------------------------------------------------
@agent
def planner(request: PlanRequest) -> Plan:
    return Plan(
        subtasks=[
            Subtask(id="size", worker="sizing", instruction="Size the market"),
            Subtask(id="rivals", worker="competitors", instruction="List competitors"),
        ]
    )


@agent
def sizing(task: str) -> str:
    return "about 2 bn a year"


@agent
def competitors(task: str) -> str:
    return "Acme and Globex"


@agent
def writer(request: SynthesisRequest) -> str:
    return "; ".join(f"{k}: {v}" for k, v in sorted(request.results.items()))


# magentic -----------------------------------------------------------------------------------
@agent
def ledger(request: LedgerRequest) -> TaskLedger:
    return TaskLedger(facts=[str(request.task)], plan=["ask the researcher"])


@agent
def progress(request: ProgressRequest) -> ProgressLedger:
    done = bool(request.transcript)
    return ProgressLedger(
        is_request_satisfied=done,
        next_speaker="" if done else "researcher",
        instruction_or_question="" if done else "Find the answer",
    )


@agent
def researcher(instruction: Any) -> str:
    return "42"


@agent
def answer(request: AnswerRequest) -> str:
    return f"answer: {request.transcript[-1].output}"


# groupchat ----------------------------------------------------------------------------------
@agent
def growth(turn: ChatTurn) -> ChatReply:
    return ChatReply(content="Revenue grows; buy.", vote="buy")


@agent
def value(turn: ChatTurn) -> ChatReply:
    return ChatReply(content="Cheap for what it is; buy.", vote="buy")


@agent
def risk(turn: ChatTurn) -> ChatReply:
    return ChatReply(content="Debt is high; hold.", vote="hold")


def next_speaker(transcript: list[ChatMessage], names: list[str]) -> str:
    return names[len(transcript) % len(names)]


# handoff ------------------------------------------------------------------------------------
@agent
def triage(text: str) -> Any:
    if "invoice" in text.lower():
        return HandoffTo("invoices", payload=text, note="a billing question")
    return "triage: answered " + text


@agent
def invoices(text: str) -> str:
    return "invoices: resent the invoice"


# loop and graph -----------------------------------------------------------------------------
@agent
def extend(text: str) -> str:
    return text + "!"


def long_enough(text: str) -> bool:
    return len(text) >= 8


@agent
def draft(text: str) -> str:
    return text + " (draft)"


@agent
def check(text: str) -> str:
    return text


def needs_work(text: str) -> bool:
    return text.count("(draft)") < 2


# adaptive -----------------------------------------------------------------------------------
@agent
def solo(task: str) -> str:
    return "solo: " + task


@agent
def team(task: str) -> str:
    return "team: " + task


# people -------------------------------------------------------------------------------------
@agent
def propose(claim: dict[str, Any]) -> dict[str, Any]:
    return {"pay": claim["amount"], "to": claim["who"]}


@agent
def pay(payment: dict[str, Any]) -> str:
    return f"paid {payment['pay']} to {payment['to']}"
