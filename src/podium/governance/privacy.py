"""`Privacy`: which agents and tools may see which kinds of sensitive data, and what the others
see instead. Pure configuration; the runtime applies it at the door (`podium.runtime.privacy`).

    Privacy(allow={"billing": {"card"}, "charge_card": {"card"}})

Every agent, tool and model step not allowed a kind gets a token in place of each value of
that kind (`<card:7f3a9c01be>`, mode "tokenize") or a bare mask (`<card>`, mode "mask"); an
allowed one gets the raw value back from the run's vault, and a `pii.reveal` event records
that it did (kind and agent, never the value). A model step sees what the agent that asks it
may see. What the run stores and prints (journal, events, run input and output, dead letters)
keeps tokens for every kind, whoever was allowed. `caller` is what the application that
started the run gets back in `RunResult.output` (nothing raw by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal

from podium.errors import UsageError
from podium.governance.pii import KINDS, check_kinds

Mode = Literal["tokenize", "mask"]
MODES: Final = ("tokenize", "mask")


def check_sees(kinds: Iterable[str] | str, owner: str) -> frozenset[str]:
    """What an agent or tool declares it may see (`sees_pii=`), checked: a `UsageError`
    names an unknown kind and the known ones."""
    try:
        return check_kinds([kinds] if isinstance(kinds, str) else kinds, f"{owner}: sees_pii")
    except ValueError as e:
        raise UsageError(str(e)) from None


class Privacy:
    """What each agent or tool (by name) may see; see the module docstring. `kinds` are the
    kinds looked for (all by default: `podium.governance.pii.KINDS`); `key` seals the vault
    and keys the tokens (default `PODIUM_PII_KEY`; without either, a random key per process:
    a run resumed in another process can then not reveal its tokens)."""

    __slots__ = ("allow", "caller", "key", "kinds", "mode")

    def __init__(
        self,
        allow: Mapping[str, Iterable[str]] | None = None,
        *,
        mode: Mode = "tokenize",
        kinds: Iterable[str] = KINDS,
        caller: Iterable[str] = (),
        key: bytes | str | None = None,
    ) -> None:
        if mode not in MODES:
            raise UsageError(f"Privacy mode must be one of {MODES}, got {mode!r}")
        try:
            self.kinds = check_kinds(kinds, "Privacy kinds")
            self.allow = {
                str(name): check_kinds(
                    [seen] if isinstance(seen, str) else seen, f"Privacy allow[{name!r}]"
                )
                for name, seen in (allow or {}).items()
            }
            self.caller = check_kinds(caller, "Privacy caller")
        except ValueError as e:
            raise UsageError(str(e)) from None
        self.mode: Mode = mode
        self.key = key

    def sees(self, name: str, declared: Iterable[str] = ()) -> frozenset[str]:
        """The kinds `name` may see: those `allow` gives it, and those it declares itself
        (a `sees_pii` attribute on the agent or tool)."""
        given = self.allow.get(name, frozenset())
        return given | frozenset(declared) if declared else given

    def to_dict(self) -> dict[str, object]:
        """The configuration as plain JSON, without the key: what a run keeps in its store,
        so that whoever resumes it applies the same privacy."""
        return {
            "allow": {k: sorted(v) for k, v in sorted(self.allow.items())},
            "mode": self.mode,
            "kinds": sorted(self.kinds),
            "caller": sorted(self.caller),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object], key: bytes | str | None = None) -> Privacy:
        """A `Privacy` from `to_dict`'s form (and a key, which that form never holds)."""
        allow = data.get("allow") or {}
        mode = data.get("mode", "tokenize")
        if not isinstance(allow, Mapping) or mode not in MODES:
            raise UsageError(f"not a stored Privacy: {dict(data)!r}")
        kinds = data.get("kinds", KINDS)
        caller = data.get("caller", ())
        return cls(
            allow,
            mode=mode,
            kinds=kinds,  # type: ignore[arg-type]
            caller=caller,  # type: ignore[arg-type]
            key=key,
        )

    def __repr__(self) -> str:
        allow = {k: sorted(v) for k, v in self.allow.items()}
        return f"Privacy(allow={allow!r}, mode={self.mode!r}, kinds={sorted(self.kinds)!r})"
