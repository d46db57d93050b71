"""Prices: every model step records its cost; runs sum it; the table is dated, defaults ship
for OpenAI and Anthropic, and code, a YAML or JSON file, and PODIUM_PRICES override it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podium import LLMAgent, ModelError, Price, Prices, Runtime, ScriptedModel, Usage, UsageError
from podium.models.prices import PRICES_AS_OF, load_prices
from podium.models.tiers import load_tiers

TEN_IN_FIVE_OUT = Usage(10, 5, 1)


def one_call(name: str = "scripted") -> LLMAgent:
    return LLMAgent(
        "writer",
        model=ScriptedModel(["done"], name=name, usage=[TEN_IN_FIVE_OUT]),
        instructions="Write.",
    )


def test_defaults_are_dated_and_match_dated_snapshots_and_provider_prefixes() -> None:
    prices = Prices()
    assert PRICES_AS_OF.count("-") == 2  # a date, YYYY-MM-DD
    mini = prices.get("gpt-4o-mini")
    assert mini == Price(0.15, 0.60, cached_input=0.075)
    assert prices.get("openai:gpt-4o-mini") is mini
    assert prices.get("openai:gpt-4o-mini-2024-07-18") is mini
    sonnet = prices.get("anthropic:claude-sonnet-4-5-20250929")
    assert sonnet == Price(3.0, 15.0, cached_input=0.30, cache_write=3.75)
    # no price: a local GGUF, a scripted model, an unknown model on an OpenAI-compatible server
    assert prices.get("local:/models/gemma.gguf") is None
    assert prices.get("scripted") is None
    assert prices.get("openai:llama3.1:8b") is None
    # the provider prefix is only stripped for providers that charge
    assert prices.get("local:gpt-4o-mini") is None


def test_cost_prices_cache_reads_and_writes_at_their_own_rates() -> None:
    sonnet = Prices().get("claude-sonnet-4-5")
    assert sonnet is not None
    # 1,000 input tokens of which 600 read from the cache and 300 written to it; 200 out
    usage = Usage(1000, 200, 1, cache_read_tokens=600, cache_write_tokens=300)
    expected = (100 * 3.0 + 600 * 0.30 + 300 * 3.75 + 200 * 15.0) / 1e6
    assert sonnet.cost(usage) == pytest.approx(expected)
    # without cache rates of its own, cached input costs the input price
    assert Price(1.0, 2.0).cost(usage) == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6)


async def test_a_model_step_records_its_cost_and_the_run_sums_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    async with Runtime(url) as rt:
        result = await rt.run(one_call("gpt-4o-mini"), "x", run_id="r1")
        (step,) = [s for s in await rt.steps("r1") if s.kind == "model"]
        record = await rt.get_run("r1")
    cost = (10 * 0.15 + 5 * 0.60) / 1e6
    assert result.usage.usd == pytest.approx(cost)
    assert step.usage is not None and step.usage.usd == pytest.approx(cost)
    assert record.usage.usd == pytest.approx(cost)  # read back from the file
    assert record.usage.to_dict()["usd"] == pytest.approx(cost)


async def test_scripted_and_local_models_cost_nothing_unless_priced() -> None:
    result = await Runtime("memory://").run(one_call(), "x")
    assert result.usage == TEN_IN_FIVE_OUT and result.usage.usd == 0
    assert "usd" not in result.usage.to_dict()  # rows look as before
    priced = Runtime("memory://", prices={"scripted": {"input": 1.0, "output": 2.0}})
    result = await priced.run(one_call(), "x")
    assert result.usage.usd == pytest.approx((10 * 1.0 + 5 * 2.0) / 1e6)


async def test_prices_from_code_a_yaml_file_and_podium_prices_each_over_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def usd(rt: Runtime, name: str) -> float:
        return rt.prices.cost(name, Usage(1_000_000, 0, 1))  # the input price, in dollars

    from_env = tmp_path / "prices.json"
    from_env.write_text(json.dumps({"house-model": {"input": 2, "output": 4}}))
    monkeypatch.setenv("PODIUM_PRICES", str(from_env))
    yaml_file = tmp_path / "prices.yaml"
    yaml_file.write_text(
        "prices:\n  house-model: {input: 3, output: 6}\n  gpt-4o-mini: {input: 9, output: 9}\n"
    )
    assert usd(Runtime("memory://"), "house-model") == 2  # the environment's file
    assert usd(Runtime("memory://"), "gpt-4o-mini") == pytest.approx(0.15)  # the default
    from_file = Runtime("memory://", prices=yaml_file)
    assert usd(from_file, "house-model") == 3 and usd(from_file, "gpt-4o-mini") == 9
    from_code = Runtime("memory://", prices={"house-model": {"input": 5, "output": 10}})
    assert usd(from_code, "house-model") == 5
    # and a run is priced with them
    result = await from_code.run(one_call("house-model"), "x")
    assert result.usage.usd == pytest.approx((10 * 5 + 5 * 10) / 1e6)
    # a Prices object is used as given: no defaults when it says so
    bare = Runtime("memory://", prices=Prices({"house-model": Price(1, 1)}, defaults=False))
    assert bare.prices.get("gpt-4o-mini") is None


def test_a_bad_price_table_names_the_file_the_model_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "prices.yaml"
    bad.write_text("house-model: {input: 1, outptu: 2}\n")
    with pytest.raises(UsageError, match=r"prices.yaml.*house-model.*unknown field.*outptu"):
        load_prices(bad)
    bad.write_text("house-model: {input: -1, output: 2}\n")
    with pytest.raises(UsageError, match=r"house-model: input must be a number >= 0, got -1"):
        load_prices(bad)
    bad.write_text("house-model: {input: 1}\n")
    with pytest.raises(UsageError, match=r"house-model: output is missing"):
        Runtime("memory://", prices=bad)
    bad.write_text("house-model: [1, 2\n")
    with pytest.raises(UsageError, match=r"does not parse"):
        load_prices(bad)
    with pytest.raises(UsageError, match=r"cannot read price file"):
        load_prices(tmp_path / "missing.json")


async def test_a_failed_step_run_again_after_resume_keeps_what_it_spent(tmp_path: Path) -> None:
    """The first attempt failed for good (a refusal that still used tokens) and the run
    failed; resumed, the step runs again: its row and the run count both attempts' cost."""
    model = ScriptedModel(
        [ModelError("refused", usage=Usage(100, 10, 1)), "done"],
        name="house-model",
        usage=[None, Usage(40, 4, 1)],
    )
    agent = LLMAgent("writer", model=model, instructions="Write.")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    rt = Runtime(url, prices={"house-model": {"input": 1.0, "output": 10.0}})
    first = await rt.run(agent, "x", run_id="r1")
    assert first.status == "failed"
    assert first.usage.usd == pytest.approx((100 * 1.0 + 10 * 10.0) / 1e6)
    again = await rt.resume("r1", agent)
    assert again.ok, again.error
    total = (140 * 1.0 + 14 * 10.0) / 1e6
    assert again.usage == Usage(140, 14, 2, usd=pytest.approx(total))
    (step,) = [s for s in await rt.steps("r1") if s.kind == "model"]
    assert step.usage == Usage(140, 14, 2, usd=pytest.approx(total))
    await rt.close()


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("a: &a [*a]\n", r"recursive alias \*a"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n"
                for p, n in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            r"more than 100000 nodes",
        ),
        ("a: " + "[" * 400 + "]" * 400 + "\n", r"nested deeper than 300 levels"),
    ],
    ids=["recursive-alias", "alias-bomb", "deep-nesting"],
)
def test_a_hostile_price_or_tiers_file_is_refused_before_it_is_loaded(
    tmp_path: Path, text: str, refusal: str
) -> None:
    """The same first pass as workflow files: nothing is expanded, the file is named."""
    bad = tmp_path / "table.yaml"
    bad.write_text(text)
    with pytest.raises(UsageError, match=rf"price file '.*table.yaml' is refused.*{refusal}"):
        load_prices(bad)
    with pytest.raises(UsageError, match=rf"tiers file '.*table.yaml' is refused.*{refusal}"):
        load_tiers(bad)
