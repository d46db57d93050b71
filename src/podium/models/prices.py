"""What model calls cost: a price table per model, in US dollars per million tokens.

    prices = Prices()                                   # the defaults below (+ PODIUM_PRICES)
    prices.cost("openai:gpt-4o-mini", usage)            # dollars for one call's usage
    Runtime(prices={"my-vllm": {"input": 0.2, "output": 0.6}})   # add or override from code
    Runtime(prices="prices.yaml")                       # ... or from a JSON or YAML file
    PODIUM_PRICES=prices.json podium run flow.yaml      # ... or from the environment

A model is priced by its `name`: exactly as written in the table (`"local:/models/q4.gguf"`,
`"my-vllm"`), or, for `openai:` and `anthropic:` models, by the model id after the colon, a
dated snapshot (`gpt-4o-mini-2024-07-18`, `claude-sonnet-4-5-20250929`) costing what its
undated name costs. A model found nowhere costs 0: local and scripted models are free unless
you price them (name a `ScriptedModel` after a real model, or add its name to the table, to
see what a run would cost there).

Cost of one call = uncached input x `input` + cache reads x `cached_input` + cache writes x
`cache_write` + output x `output`, all per million tokens. `Usage.input_tokens` counts every
input token, cached or not; `cache_read_tokens` and `cache_write_tokens` say how many of them
were read from or written to the provider's prompt cache.

The defaults are the providers' list prices for standard (not batch, not priority)
processing as of `PRICES_AS_OF`, from `PRICE_SOURCES`. Prices change: override what you use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.core.datafile import read_table
from podium.core.records import Usage
from podium.errors import UsageError

PRICES_AS_OF = "2026-11-05"
PRICE_SOURCES = (
    "https://developers.openai.com/api/docs/pricing",
    "https://platform.claude.com/docs/en/about-claude/pricing",
)
ENV = "PODIUM_PRICES"
_FIELDS = ("input", "output", "cached_input", "cache_write")
_MILLION = 1_000_000.0


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens. `cached_input` (cache reads) and `cache_write` default
    to the `input` price when a provider has no such rate."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        """Dollars for `usage` at these rates."""
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
        fresh = max(0, usage.input_tokens - read - write)
        cached = self.input if self.cached_input is None else self.cached_input
        writing = self.input if self.cache_write is None else self.cache_write
        dollars = (
            fresh * self.input + read * cached + write * writing + usage.output_tokens * self.output
        )
        return dollars / _MILLION

    def to_dict(self) -> dict[str, float]:
        return {f: v for f in _FIELDS if (v := getattr(self, f)) is not None}


def _openai(input: float, cached: float, output: float) -> Price:
    return Price(input, output, cached_input=cached)


def _anthropic(input: float, write: float, read: float, output: float) -> Price:
    return Price(input, output, cached_input=read, cache_write=write)  # 5-minute cache writes


_OPUS_4 = _anthropic(15.0, 18.75, 1.50, 75.0)
_OPUS_45 = _anthropic(5.0, 6.25, 0.50, 25.0)
_SONNET_4 = _anthropic(3.0, 3.75, 0.30, 15.0)
_SONNET_5 = _anthropic(2.0, 2.50, 0.20, 10.0)

DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI, standard processing
    "gpt-5.5": _openai(5.0, 0.50, 30.0),
    "gpt-5.4": _openai(2.50, 0.25, 15.0),
    "gpt-5.4-mini": _openai(0.75, 0.075, 4.50),
    "gpt-5.4-nano": _openai(0.20, 0.02, 1.25),
    "gpt-5": _openai(1.25, 0.125, 10.0),
    "gpt-5-mini": _openai(0.25, 0.025, 2.0),
    "gpt-5-nano": _openai(0.05, 0.005, 0.40),
    "gpt-4.1": _openai(2.0, 0.50, 8.0),
    "gpt-4.1-mini": _openai(0.40, 0.10, 1.60),
    "gpt-4.1-nano": _openai(0.10, 0.025, 0.40),
    "gpt-4o": _openai(2.50, 1.25, 10.0),
    "gpt-4o-mini": _openai(0.15, 0.075, 0.60),
    "o3": _openai(2.0, 0.50, 8.0),
    "o4-mini": _openai(1.10, 0.275, 4.40),
    # Anthropic: base input, 5-minute cache writes, cache hits, output
    "claude-opus-5": _OPUS_45,
    "claude-sonnet-5": _SONNET_5,
    "claude-opus-4-8": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4": _OPUS_4,
    "claude-opus-4-0": _OPUS_4,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-sonnet-4-0": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-haiku-4-5": _anthropic(1.0, 1.25, 0.10, 5.0),
    "claude-3-5-haiku": _anthropic(0.80, 1.0, 0.08, 4.0),
    "claude-3-haiku": _anthropic(0.25, 0.30, 0.03, 1.25),
}

# Providers whose model ids are looked up without their prefix, and snapshot suffixes that
# cost what the undated name costs.
_PRICED_PROVIDERS = ("openai", "anthropic")
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


class Prices:
    """A price table: model name to `Price`. Lookups are cached; the table never changes
    after construction (build a new one with `with_prices`)."""

    __slots__ = ("_found", "table")

    def __init__(
        self, table: Mapping[str, Price | Mapping[str, Any]] | None = None, *, defaults: bool = True
    ) -> None:
        merged: dict[str, Price] = dict(DEFAULT_PRICES) if defaults else {}
        merged.update(parse_table(table or {}, "prices"))
        self.table = merged
        self._found: dict[str, Price | None] = {}

    def with_prices(self, table: Mapping[str, Price | Mapping[str, Any]], where: str) -> Prices:
        """This table with `table`'s entries added or replaced (`where` names them in errors)."""
        out = Prices(defaults=False)
        out.table = {**self.table, **parse_table(table, where)}
        return out

    def get(self, model: str) -> Price | None:
        """The price of a model by name, or None when it is not priced."""
        try:
            return self._found[model]
        except KeyError:
            price = self._found[model] = self._lookup(model)
            return price

    def _lookup(self, model: str) -> Price | None:
        table = self.table
        if model in table:
            return table[model]
        provider, sep, rest = model.partition(":")
        if not sep or provider not in _PRICED_PROVIDERS:
            return None
        if rest in table:
            return table[rest]
        undated = _SNAPSHOT.sub("", rest)
        return table.get(undated)

    def cost(self, model: str, usage: Usage) -> float:
        """Dollars for `usage` on `model` (0 for a model not priced)."""
        price = self.get(model)
        return 0.0 if price is None else price.cost(usage)

    def priced(self, model: str, usage: Usage) -> Usage:
        """`usage` with its `usd` set at this table's price for `model`."""
        price = self.get(model)
        if price is None:
            return usage
        return Usage(
            usage.input_tokens,
            usage.output_tokens,
            usage.requests,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            price.cost(usage),
        )

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {name: price.to_dict() for name, price in sorted(self.table.items())}

    def __repr__(self) -> str:
        return f"Prices({len(self.table)} models)"


def parse_table(table: Mapping[str, Any], where: str) -> dict[str, Price]:
    """Price entries from plain data (`{"model": {"input": .., "output": ..}}`), checked: every
    problem names the model and the field, and where the table came from."""
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: expected a mapping of model name to prices, got {table!r}")
    out: dict[str, Price] = {}
    for name, entry in table.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"{where}: model names must be non-empty strings, got {name!r}")
        out[name] = entry if isinstance(entry, Price) else _parse_price(entry, f"{where}: {name}")
    return out


def _parse_price(entry: Any, where: str) -> Price:
    if not isinstance(entry, Mapping):
        raise UsageError(
            f"{where}: expected {{input: ..., output: ...}} in dollars per million tokens, "
            f"got {entry!r}"
        )
    unknown = set(entry) - set(_FIELDS)
    if unknown:
        raise UsageError(f"{where}: unknown field(s) {sorted(unknown)}; fields are {_FIELDS}")
    values: dict[str, float] = {}
    for field in _FIELDS:
        value = entry.get(field)
        if value is None:
            if field in ("input", "output"):
                raise UsageError(f"{where}: {field} is missing (dollars per million tokens)")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise UsageError(f"{where}: {field} must be a number >= 0, got {value!r}")
        values[field] = float(value)
    return Price(**values)


def load_prices(path: str | Path) -> dict[str, Price]:
    """The entries of a JSON or YAML price file: model names at the top, or under `prices:`."""
    data = read_table(path, "price file", "prices")
    return parse_table(data or {}, f"price file {str(path)!r}")


def resolve_prices(spec: Prices | Mapping[str, Any] | str | Path | None = None) -> Prices:
    """The prices a runtime uses: a `Prices` as given; otherwise the defaults, then the file
    `PODIUM_PRICES` names, then `spec` (a file path, or a mapping), each over the one before."""
    if isinstance(spec, Prices):
        return spec
    prices = Prices()
    env = os.environ.get(ENV)
    if env:
        prices = prices.with_prices(load_prices(env), f"${ENV}")
    if isinstance(spec, str | Path):
        return prices.with_prices(load_prices(spec), str(spec))
    if spec is not None:
        return prices.with_prices(spec, "prices")
    return prices
