"""The five analysts and the synthesis, as `LLMAgent`s with structured output.

Offline, each runs on a `ScriptedModel` whose answer is a deterministic function of the
dossier it is handed (the last user message): the same checks a junior analyst would run
first. `fail` / `hang` make one analyst's model raise or never answer, to show the gap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from podium import LLMAgent, ScriptedModel
from podium.core.tools import ToolSpec
from podium.models.base import Message, OutputSchema

AREAS = ("financial", "legal", "market", "technology", "esg")
MODEL_LABEL = "scripted (offline: ScriptedModels computing from dossier.json)"
Rating = Literal["green", "amber", "red"]


class Finding(BaseModel):
    area: str
    deal_id: str
    company: str
    rating: Rating
    score: int = Field(ge=0, le=100)
    headline: str
    risks: list[str]
    highlights: list[str]


class Memo(BaseModel):
    deal_id: str
    company: str
    recommendation: Literal["proceed", "proceed_with_conditions", "do_not_proceed"]
    overall_score: int
    findings: list[Finding]
    conditions: list[str]
    gaps: dict[str, str]
    text: str
    model: str = MODEL_LABEL


def _financial(d: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    f = d["financial"]
    rev, margin = f["revenue_musd"], f["ebitda_margin"]
    cagr = (rev[-1] / rev[0]) ** (1 / (len(rev) - 1)) - 1
    leverage = f["net_debt_musd"] / (rev[-1] * margin[-1])
    score, risks, good = 70, [], [f"revenue grows {cagr:.0%} a year"]
    score += 10 if cagr >= 0.15 else 0
    if margin[-1] > margin[0]:
        score += 5
        good.append(f"EBITDA margin up from {margin[0]:.0%} to {margin[-1]:.0%}")
    if leverage > 2.5:
        score -= 15 if leverage > 3.5 else 5
        risks.append(f"net debt is {leverage:.1f}x EBITDA")
    if f["top3_customer_share"] > 0.4:
        score -= 10
        risks.append(f"top three customers are {f['top3_customer_share']:.0%} of revenue")
    if f["audit_opinion"] != "unqualified":
        score -= 30
        risks.append(f"audit opinion is {f['audit_opinion']}")
    return score, risks, good


def _legal(d: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    g, revenue = d["legal"], d["financial"]["revenue_musd"][-1]
    score, risks = 85, []
    for case in g["litigation"]:
        share = case["exposure_musd"] / revenue
        score -= 15 if share > 0.05 else 5
        risks.append(f"{case['status']} {case['matter']} (exposure ${case['exposure_musd']}M)")
    if g["change_of_control_contracts"]:
        score -= 5
        risks.append(f"{g['change_of_control_contracts']} contracts have change-of-control clauses")
    score -= 10 * len(g["regulatory_findings"])
    risks += [f"regulatory finding: {r}" for r in g["regulatory_findings"]]
    return score, risks, [f"{g['patents_granted']} patents granted"]


def _market(d: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    m = d["market"]
    score, risks, good = 65, [], [f"${m['tam_busd']}B market growing {m['tam_growth']:.0%}"]
    score += 10 if m["tam_growth"] >= 0.08 else 0
    if m["net_revenue_retention"] >= 1.1:
        score += 10
        good.append(f"net revenue retention {m['net_revenue_retention']:.0%}")
    if m["market_share"] < 0.03:
        score -= 5
        risks.append(f"{m['market_share']:.1%} share against {', '.join(m['competitors'][:2])}")
    return score, risks, good


def _technology(d: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    t = d["technology"]
    score, risks, good = 80, [], [f"stack: {', '.join(t['stack'])}"]
    if t["tech_debt_ratio"] > 0.2:
        score -= 10
        risks.append(f"tech debt is {t['tech_debt_ratio']:.0%} of the engineering backlog")
    score -= 5 * t["security_incidents_24m"]
    if t["security_incidents_24m"]:
        risks.append(f"{t['security_incidents_24m']} security incident(s) in 24 months")
    score -= 10 * len(t["key_person_risks"])
    risks += [f"key person: {k}" for k in t["key_person_risks"]]
    if t["soc2"]:
        score += 5
        good.append("SOC 2 certified")
    return score, risks, good


def _esg(d: dict[str, Any]) -> tuple[int, list[str], list[str]]:
    e = d["esg"]
    score, risks, good = 75, [], []
    if e["emissions_trend"] < 0:
        score += 5
        good.append(f"scope 1+2 emissions falling {-e['emissions_trend']:.0%} a year")
    if e["women_on_board"] < 0.3:
        score -= 5
        risks.append(f"women are {e['women_on_board']:.0%} of the board")
    score -= 5 * len(e["controversies"])
    risks += [f"controversy: {c}" for c in e["controversies"]]
    if e["supplier_code_of_conduct"]:
        score += 5
    return score, risks, good


CHECKS: dict[str, Callable[[dict[str, Any]], tuple[int, list[str], list[str]]]] = {
    "financial": _financial,
    "legal": _legal,
    "market": _market,
    "technology": _technology,
    "esg": _esg,
}


def analyse(area: str, dossier: dict[str, Any]) -> Finding:
    score, risks, good = CHECKS[area](dossier)
    score = max(0, min(100, score))
    rating: Rating = "green" if score >= 75 else "amber" if score >= 55 else "red"
    top = risks[0] if risks else good[0] if good else "nothing to note"
    return Finding(
        area=area,
        deal_id=dossier["deal_id"],
        company=dossier["company"],
        rating=rating,
        score=score,
        headline=f"{area} {rating} at {score}/100: {top}",
        risks=risks,
        highlights=good,
    )


def _last_user(messages: Sequence[Message]) -> Any:
    return json.loads(next(m.content for m in reversed(messages) if m.role == "user"))


def analyst(area: str, *, fail: bool = False, hang: bool = False) -> LLMAgent:
    """One analyst; `fail` makes its model raise, `hang` makes it never answer."""

    async def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> dict[str, Any]:
        if hang:
            await asyncio.sleep(3600)  # the branch timeout cuts this short
        if fail:
            raise RuntimeError(f"the {area} data room is unavailable")
        return analyse(area, _last_user(messages)).model_dump()

    return LLMAgent(
        f"{area}_analyst",
        model=ScriptedModel(answer, name=f"scripted-{area}"),
        instructions=f"You are the {area} analyst on a due-diligence team. Read the dossier "
        "and rate the company green, amber or red with a score, risks and highlights.",
        output_type=Finding,
        description=f"Reviews the {area} section of the dossier.",
    )


def synthesise(results: dict[str, Any], gaps: dict[str, str]) -> Memo:
    """The synthesis: red anywhere is a no; amber or a missing review means conditions."""
    findings = [Finding.model_validate(r) for r in results.values()]
    missing = {name.removesuffix("_analyst"): why for name, why in gaps.items()}
    company, deal_id = findings[0].company, findings[0].deal_id
    overall = round(sum(f.score for f in findings) / len(findings))
    conditions = [r for f in findings if f.rating == "amber" for r in f.risks[:1]]
    conditions += [f"complete the {area} review before signing" for area in missing]
    if any(f.rating == "red" for f in findings):
        rec: Any = "do_not_proceed"
    elif conditions:
        rec = "proceed_with_conditions"
    else:
        rec = "proceed"
    lines = [
        f"Investment memo: {company}",
        f"Recommendation: {rec.replace('_', ' ')} (overall {overall}/100, "
        f"{len(findings)} of {len(findings) + len(missing)} reviews)",
        "",
        *(f"- {f.headline}" for f in findings),
    ]
    if conditions:
        lines += ["", "Conditions:", *(f"- {c}" for c in conditions)]
    if missing:
        lines += ["", "Gaps:"]
        lines += [
            f"- no {a} review ({why}); this memo is provisional until it is done"
            for a, why in missing.items()
        ]
    return Memo(
        deal_id=deal_id,
        company=company,
        recommendation=rec,
        overall_score=overall,
        findings=findings,
        conditions=conditions,
        gaps=missing,
        text="\n".join(lines),
    )


def synthesis_agent() -> LLMAgent:
    def answer(
        messages: Sequence[Message], tools: Sequence[ToolSpec], schema: OutputSchema | None
    ) -> dict[str, Any]:
        merged = _last_user(messages)
        return synthesise(merged["results"], merged["gaps"]).model_dump()

    return LLMAgent(
        "synthesis",
        model=ScriptedModel(answer, name="scripted-synthesis"),
        instructions="You lead the due-diligence team. From the analysts' findings (and the "
        "reviews that are missing) write the investment memo with a recommendation.",
        output_type=Memo,
        description="Writes the memo from the findings and names the gaps.",
    )
