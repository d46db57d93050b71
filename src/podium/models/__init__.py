"""Models behind one protocol: scripted (tests, demos), OpenAI-compatible servers, Anthropic,
and GGUF files run in-process by llama.cpp.

Each provider loads its SDK (`openai`, `anthropic`, `llama_cpp`) only when it first talks to
its model, so `import podium` stays light.
"""

from podium.core.tools import ToolSpec
from podium.errors import ScriptExhaustedError, renamed
from podium.models.anthropic import AnthropicModel
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
from podium.models.local import LocalModel
from podium.models.openai import OpenAIModel
from podium.models.scripted import ModelRequest, ScriptedModel, tool_call
from podium.models.settings import model_from_env, resolve_model

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

__getattr__ = renamed(__name__, ["ScriptExhausted"])
