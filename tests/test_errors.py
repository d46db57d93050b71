"""The error tree: one naming rule, every class in the documented tree, old names for one
release."""

from __future__ import annotations

import importlib
import inspect
import re
import warnings

import pytest

import podium
from podium import errors

FAILURES = [
    c
    for c in vars(errors).values()
    if inspect.isclass(c)
    and issubclass(c, errors.PodiumError)
    and not issubclass(c, errors.Suspended)
]


def _all_exception_classes() -> list[type[BaseException]]:
    """Every exception class a podium module defines (imported modules only)."""
    import podium.cli.app
    import podium.spec.loader  # noqa: F401

    found = []
    for name, module in list(importlib.sys.modules.items()):  # type: ignore[attr-defined]
        if name == "podium" or name.startswith("podium."):
            for value in vars(module).values():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == name
                ):
                    found.append(value)
    return found


def test_every_failure_ends_in_error_and_signals_do_not() -> None:
    assert len(FAILURES) > 25
    assert [c.__name__ for c in FAILURES if not c.__name__.endswith("Error")] == []
    signals = [
        c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.Suspended)
    ]
    assert {c.__name__ for c in signals} == {
        "Suspended",
        "Parked",
        "LeaseLost",
        "JournalUnavailable",
    }


# Exception classes defined outside podium.errors, and why they may be.
ELSEWHERE = {
    "Unstorable": "a ValueError from serde for a value with no JSON form, not a run's failure",
    "AnswerError": "internal: why a model's reply is not a valid answer, turned into a re-ask",
    "ItemError": "internal: a batch answer without this item, which is then asked alone",
    "SagaReplayStop": "internal signal (a Suspended): stops a replay that looks for effects",
    "ConnectionLost": "internal: a shared connection closed under a call; the MCP client raises "
    "MCPConnectionError",
    "_Cut": "internal signal (a BaseException): stops a replay where the run was stopped",
    "_Diverged": "internal: carries a replay's first difference out; users get NonDeterminismError",
    "_Stop": "internal signal (a Suspended) of the replay probe",
    "HostileYAMLError": "internal: a YAML file refused before loading, raised to users as "
    "SpecProblemsError (workflows) or UsageError (price and tier files), naming the file",
    "_TooLargeError": "internal: an -i @FILE past the size cap, raised as a UsageError",
    "ApiError": "internal to the HTTP server: a refused request, answered as a 4xx JSON body",
}


def test_every_failure_is_defined_in_errors_and_drawn_in_its_tree() -> None:
    """A podium failure a user can meet lives in podium.errors and appears in its docstring's
    tree; the other exception classes are listed in ELSEWHERE with the reason."""
    tree = errors.__doc__ or ""
    for cls in _all_exception_classes():
        if cls.__module__ != "podium.errors":
            assert cls.__name__ in ELSEWHERE, f"{cls.__qualname__} in {cls.__module__}"
            assert cls.__name__ not in podium.__all__
    for cls in vars(errors).values():
        if inspect.isclass(cls) and issubclass(cls, errors.PodiumError):
            assert re.search(rf"\b{cls.__name__}\b", tree), f"{cls.__name__} is not in the tree"


@pytest.mark.parametrize(
    ("module", "old"),
    [
        ("podium", "StepFailed"),
        ("podium", "BudgetExceeded"),
        ("podium", "PingPongDetected"),
        ("podium.errors", "SweepFailed"),
        ("podium.errors", "SpecProblems"),
        ("podium.patterns", "QuorumNotMet"),
        ("podium.patterns.handoff", "MaxHandoffsExceeded"),
        ("podium.patterns.graph", "MaxStepsExceeded"),
        ("podium.models", "ScriptExhausted"),
        ("podium.spec.loader", "SpecProblems"),
    ],
)
def test_an_old_name_still_works_for_one_release_with_a_warning(module: str, old: str) -> None:
    mod = importlib.import_module(module)
    with pytest.warns(
        DeprecationWarning, match=rf"{module}\.{old} is now {errors.RENAMED[old]}"
    ) as seen:
        cls = getattr(mod, old)
    assert cls is getattr(errors, errors.RENAMED[old])
    assert seen[0].filename == __file__  # the warning points at the line that used the name


def test_every_old_name_maps_to_a_class_of_the_tree() -> None:
    for old, new in errors.RENAMED.items():
        assert new.endswith("Error") and old != new
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert getattr(errors, old) is getattr(errors, new)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        podium.Nope  # noqa: B018
    assert "StepFailed" not in podium.__all__ and "StepError" in podium.__all__
