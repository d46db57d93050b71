"""Which model to use, from a short string or the environment.

    resolve_model("openai:gpt-4o-mini")    # OpenAIModel("gpt-4o-mini")
    resolve_model("openai:llama3.1:8b")    # anything after the first colon is the model name
    resolve_model("anthropic:claude-sonnet-4-5")   # AnthropicModel("claude-sonnet-4-5")
    resolve_model("local:models/gemma.gguf")       # LocalModel("models/gemma.gguf"), in-process
    resolve_model("scripted")              # ScriptedModel.echo(), for demos without a provider
    resolve_model(None)                    # PODIUM_MODEL, else None

`None` means nothing is configured: callers fall back to a `ScriptedModel` and say so, rather
than reaching a provider nobody asked for.
"""

from __future__ import annotations

import os

from podium.errors import UsageError
from podium.models.base import Model

PROVIDERS = ("openai", "anthropic", "local", "scripted")


def resolve_model(spec: str | Model | None) -> Model | None:
    """A `Model` for `spec` (a model passes through), or None when nothing is configured."""
    if spec is None:
        spec = os.environ.get("PODIUM_MODEL") or None
        if spec is None:
            return None
    if not isinstance(spec, str):
        if isinstance(spec, Model):
            return spec
        raise UsageError(f"{spec!r} is not a model: it needs `name` and `async respond(...)`")
    provider, name = parse_model_spec(spec)
    if provider == "scripted":
        from podium.models.scripted import ScriptedModel

        return ScriptedModel.echo(name)
    return _provider_model(provider, name)


def parse_model_spec(spec: str) -> tuple[str, str]:
    """The provider and model name a string names, without building anything (so a typo is
    found where the string is given, not in the middle of a run); `UsageError` if it names
    none."""
    text = spec.strip()
    provider, sep, rest = text.partition(":")
    if text == "scripted" or (provider == "scripted" and sep):
        return "scripted", rest or "scripted"
    if sep and rest and provider in ("openai", "anthropic", "local"):
        return provider, rest
    if text and not sep:
        return "openai", text  # a bare name: an OpenAI-compatible endpoint
    raise UsageError(
        f"model {spec!r} is not understood: write 'openai:<model name>' (any "
        "OpenAI-compatible server, see PODIUM_MODEL_BASE_URL), 'anthropic:<model name>', "
        "'local:<path to a .gguf file>' or 'scripted'"
    )


def _provider_model(provider: str, rest: str) -> Model:
    """The provider's model class, imported only now; a missing SDK is a `UsageError` that
    names the extra to install, so a YAML file or `PODIUM_MODEL` gets a one-line error."""
    try:
        if provider == "anthropic":
            from podium.models.anthropic import AnthropicModel

            return AnthropicModel(rest)
        if provider == "local":
            from podium.models.local import LocalModel

            return LocalModel(rest)
        from podium.models.openai import OpenAIModel

        return OpenAIModel(rest)
    except ImportError as e:
        raise UsageError(f"model '{provider}:{rest}': {e}") from None


def model_from_env() -> Model | None:
    """The model `PODIUM_MODEL` names, or None when it is not set."""
    return resolve_model(None)
