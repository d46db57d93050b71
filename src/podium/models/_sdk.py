"""What the provider modules share: finding settings in the environment, and vendor SDKs that
are optional extras, imported only when a model first talks to its provider."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any


def env(*names: str) -> str | None:
    """The first of these environment variables that is set and not empty."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def hide_key(error: Exception, key: str | None) -> Exception:
    """`error` with the API key, where a server echoed it in its message (a 401 body saying
    "invalid key sk-..."), replaced by `<secret:api_key>`: the message goes to the journal,
    events and the CLI. Keys of any shape, not only the ones the secret detectors know."""
    said = error.args[0] if error.args else None
    if key and len(key) >= 8 and isinstance(said, str) and key in said:
        error.args = (error.args[0].replace(key, "<secret:api_key>"), *error.args[1:])
    return error


def install_hint(what: str, module: str, extra: str) -> str:
    return f"{what} needs the {module} package: pip install 'podium[{extra}]'"


def check_installed(what: str, module: str, extra: str) -> None:
    """Fail at once, naming the extra to install, when a vendor SDK is missing; without
    importing it, so declaring a model stays cheap."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-removed install
        found = False
    if not found:
        raise ImportError(install_hint(what, module, extra))


def import_sdk(what: str, module: str, extra: str) -> Any:
    """The vendor SDK module, or an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(install_hint(what, module, extra)) from e


def transport_errors() -> tuple[type[BaseException], ...]:
    """What the HTTP client raises when a stream is cut mid-body (SDKs wrap only some of
    them, and only errors before the response starts)."""
    for name in ("httpx2", "httpx"):  # the SDKs' HTTP client, by version
        try:
            return (importlib.import_module(name).TransportError,)
        except (ImportError, AttributeError):
            continue
    return ()  # pragma: no cover - the SDKs always bring one
