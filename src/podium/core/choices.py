"""Options that are one of a few names: `enum.StrEnum`s, with the plain strings still taken.

A `StrEnum` member is a `str`, so a stored value, a YAML key or an `==` against the old string
all keep working; `choice` turns what a user passed into the member, or a `UsageError` that
lists the names there are.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from podium.errors import UsageError

E = TypeVar("E", bound=StrEnum)


def choice(kind: type[E], where: str, option: str, value: object) -> E:
    """`value` (a member or its string) as a member of `kind`; `UsageError` naming `where`
    and the option otherwise."""
    if type(value) is kind:
        return value
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    names = ", ".join(repr(m.value) for m in kind)
    raise UsageError(f"{where}: {option} must be one of {names}; got {value!r}")
