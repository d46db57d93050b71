"""Models behind one protocol: scripted (tests, demos) and OpenAI-compatible providers.

`OpenAIModel` loads the `openai` SDK only when it first talks to a server.
"""

from podium.models.base import (
    Message,
    Model,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    ToolCall,
    ToolSpec,
)
from podium.models.openai import OpenAIModel
from podium.models.scripted import ModelRequest, ScriptedModel, ScriptExhausted, tool_call
from podium.models.settings import model_from_env, resolve_model

__all__ = [
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "OpenAIModel",
    "OutputSchema",
    "ScriptExhausted",
    "ScriptedModel",
    "ToolCall",
    "ToolSpec",
    "model_from_env",
    "resolve_model",
    "tool_call",
]
