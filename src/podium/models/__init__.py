"""Models behind one protocol: scripted (tests, demos), OpenAI-compatible servers, Anthropic,
and GGUF files run in-process by llama.cpp.

Each provider's module loads on first use of its class, and its SDK (`openai`, `anthropic`,
`llama_cpp`) only when it first talks to its model, so `import podium` stays light.
"""

from typing import TYPE_CHECKING, Any

from podium.core.tools import ToolSpec
from podium.errors import ScriptExhaustedError, renamed
from podium.models.base import (
    Message,
    Model,
    ModelDelta,
    ModelDone,
    ModelResponse,
    ModelSettings,
    ModelStreamEvent,
    OutputSchema,
    StreamingModel,
    ToolCall,
    stream_response,
)
from podium.models.scripted import ModelRequest, ScriptedModel, tool_call
from podium.models.settings import model_from_env, resolve_model

if TYPE_CHECKING:
    from podium.models.anthropic import AnthropicModel
    from podium.models.local import LocalModel
    from podium.models.openai import OpenAIModel

__all__ = [
    "AnthropicModel",
    "LocalModel",
    "Message",
    "Model",
    "ModelDelta",
    "ModelDone",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModelStreamEvent",
    "OpenAIModel",
    "OutputSchema",
    "ScriptExhaustedError",
    "ScriptedModel",
    "StreamingModel",
    "ToolCall",
    "ToolSpec",
    "model_from_env",
    "resolve_model",
    "stream_response",
    "tool_call",
]

# The providers' modules (wire formats, streaming state) load on first use, like their SDKs.
_PROVIDERS = {
    "AnthropicModel": "podium.models.anthropic",
    "LocalModel": "podium.models.local",
    "OpenAIModel": "podium.models.openai",
}
_old_name = renamed(__name__, ["ScriptExhausted"], depth=1)


def __getattr__(name: str) -> Any:
    module = _PROVIDERS.get(name)
    if module is None:
        return _old_name(name)
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
