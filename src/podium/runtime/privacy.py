"""Sensitive data at the door: secrets out of everything stored, and PII per agent.

Two things happen here:

- `scrub_secrets`: what a run stores (journal outputs and errors, event data, run input,
  output and error, dead letters) has every secret masked (`<secret:openai_key>`), whatever
  the configuration. It is what `RunState.scrub` does for a run without `Privacy`: a walk
  over the value that skips short strings and strings with no secret's literal piece.
- With `Runtime(pii=Privacy(...))`, a `RunPrivacy` per run: the `privacy` slot of the door
  hides each kind from the agents, tools and model steps not allowed it (tokens, or masks)
  and reveals tokens to the allowed ones (emitting `pii.reveal`); what the run stores keeps a
  token for every sensitive value (`RunState.scrub`), and the vault (the store's key-value
  namespace `pii-vault`, one sealed entry per run and token) turns them back into values.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from pydantic_core import to_json

from podium.governance.pii import KINDS, Finding, find_sensitive, replace_findings, rewrite
from podium.governance.secrets import (
    SECRET,
    mask_secrets,
    might_hold_secret,
    might_hold_secret_json,
)
from podium.governance.vault import TOKEN_RE, seal, token_for, unseal

if TYPE_CHECKING:
    from podium.governance.privacy import Privacy
    from podium.runtime.context import RunState
    from podium.runtime.door import Call, Handler
    from podium.stores.base import Store

VAULT: Final = "pii-vault"
PRIVACY_KV: Final = "podium.privacy"  # run id -> the Privacy it was started with (no key)
_FOUND_CACHE: Final = 4096  # texts whose findings a run remembers
_ALL: Final = frozenset(KINDS)


def _mask_text(text: str) -> str:
    return mask_secrets(text) if might_hold_secret(text) else text


def scrub_secrets(value: Any) -> Any:
    """`value` with every secret in its strings masked; the same object when it holds none.
    A container is first looked at whole, in its JSON form (C speed), and walked only when
    that form holds a piece of a secret's shape or name."""
    kind = type(value)
    if kind is str:
        return mask_secrets(value) if might_hold_secret(value) else value
    if value is None or kind is int or kind is float or kind is bool:
        return value
    try:
        data = to_json(value)
    except Exception:  # no JSON form (the store will say so): walk it
        data = None
    if data is not None and not might_hold_secret_json(data):
        return value
    return rewrite(value, _mask_text, secret_fields=True)


def scrub_text(text: str | None) -> str | None:
    """An error message with its secrets masked."""
    return text if text is None or not might_hold_secret(text) else mask_secrets(text)


class RunPrivacy:
    """One run's privacy: the config, the vault key, what each agent step may see, and the
    tokens this process knows (so a value is sealed and a token looked up once)."""

    __slots__ = (
        "config",
        "detect",
        "found",
        "key",
        "known",
        "pending",
        "run_id",
        "sees_at",
        "store",
    )

    def __init__(self, config: Privacy, key: bytes, run_id: str, store: Store) -> None:
        self.config = config
        self.detect = config.kinds | {SECRET}  # secrets are looked for whatever the kinds
        self.key = key
        self.run_id = run_id
        self.store = store
        # agent step key -> (the agent's name, the kinds it may see)
        self.sees_at: dict[str, tuple[str, frozenset[str]]] = {}
        self.known: dict[str, str] = {}  # token -> value (this process's, never stored raw)
        self.pending: dict[str, str] = {}  # token -> value not yet in the vault
        # text -> what the detectors found in it: a value crosses many doors unchanged
        self.found: dict[str, list[Finding]] = {}

    def _find(self, text: str) -> list[Finding]:
        found = self.found.get(text)
        if found is None:
            found = find_sensitive(text, self.detect)
            if len(self.found) >= _FOUND_CACHE:
                self.found.clear()
            self.found[text] = found
        return found

    # what is stored --------------------------------------------------------------------------
    def store_form(self, value: Any) -> Any:
        """`value` as the run stores it: every sensitive value a token."""
        return rewrite(value, self._tokenize_all, secret_fields=True)

    def store_text(self, text: str | None) -> str | None:
        """An error message as the run stores it (see `store_form`)."""
        return None if text is None else self._tokenize_all(text)

    def _tokenize_all(self, text: str) -> str:
        findings = self._find(text)
        return replace_findings(text, findings, self._token) if findings else text

    def _token(self, f: Finding, value: str) -> str:
        token = token_for(self.key, self.run_id, f.kind, value)
        if token not in self.known:
            self.known[token] = value
            self.pending[token] = value
        return token

    async def flush(self) -> None:
        """Write the tokens minted since the last flush to the vault (sealed), before the
        journal row or event that holds them."""
        if not self.pending:
            return
        pending, self.pending = self.pending, {}
        for token, value in pending.items():
            await self.store.kv_put(VAULT, self._vault_key(token), seal(self.key, value))

    def _vault_key(self, token: str) -> str:
        return f"{self.run_id}:{token[1:-1]}"

    # the door --------------------------------------------------------------------------------
    def sees(self, call: Call) -> frozenset[str]:
        """What the target of `call` may see: a model step what its agent may."""
        if call.kind == "model":
            return self.sees_at.get(call.parent, ("", frozenset()))[1]
        declared = getattr(call.target, "sees_pii", None) or ()
        return self.config.sees(call.name, declared)

    async def cross(self, value: Any, sees: frozenset[str], call: Call, reader: str) -> Any:
        """`value` as `reader`, who may see `sees`, gets it: the kinds it may not see hidden,
        the tokens of the kinds it may see revealed (each reveal recorded)."""
        hidden = rewrite(value, lambda text: self._hide(text, sees))
        if not sees:
            return hidden
        wanted: dict[str, str] = {}
        rewrite(hidden, lambda text: _collect(text, sees, wanted))
        if not wanted:
            return hidden
        await self._load(wanted)
        for token, kind in wanted.items():
            if token in self.known:
                call.run.emit(
                    "pii.reveal", call.key, call.name, data={"token_kind": kind, "agent": reader}
                )
        return rewrite(hidden, lambda text: self._reveal(text, sees))

    def _hide(self, text: str, sees: frozenset[str]) -> str:
        findings = [f for f in self._find(text) if f.kind not in sees]
        if not findings:
            return text
        if self.config.mode == "mask":
            return replace_findings(text, findings, _mask_one)
        return replace_findings(text, findings, self._token)

    def _reveal(self, text: str, sees: frozenset[str]) -> str:
        if "<" not in text:
            return text

        def one(m: re.Match[str]) -> str:
            token = m.group(0)
            return self.known.get(token, token) if m.group(1) in sees else token

        return TOKEN_RE.sub(one, text)

    async def _load(self, wanted: dict[str, str]) -> None:
        """Read the values of tokens this process has not seen from the vault."""
        for token in wanted:
            if token in self.known:
                continue
            sealed = await self.store.kv_get(VAULT, self._vault_key(token))
            value = None if not isinstance(sealed, str) else unseal(self.key, sealed)
            if value is not None:
                self.known[token] = value


def _collect(text: str, sees: frozenset[str], into: dict[str, str]) -> str:
    if "<" in text:
        for m in TOKEN_RE.finditer(text):
            if m.group(1) in sees:
                into[m.group(0)] = m.group(1)
    return text


def _mask_one(f: Finding, _value: str) -> str:
    return f"<secret:{f.detail}>" if f.kind == SECRET else f"<{f.kind}>"


async def privacy_middleware(call: Call, nxt: Handler) -> Any:
    """The door's `privacy` slot (only in the door of a runtime given `pii=`): the target
    gets its input as it may see it, and the caller gets the output as it may see it."""
    run: RunState = call.run
    p = run.privacy
    if p is None:
        return await nxt(call)
    sees = p.sees(call)
    if call.kind == "agent":
        p.sees_at[call.key] = (call.name, sees)
    call.input = await p.cross(call.input, sees, call, call.name)
    await p.flush()
    output = await nxt(call)
    reader, caller = p.sees_at.get(call.parent, ("caller", p.config.caller))
    output = await p.cross(output, caller, call, reader)
    await p.flush()
    return output
