"""Models behind one protocol: scripted (tests, demos) and OpenAI-compatible providers."""

from podium.models.base import (
    Message,
    Model,
    ModelResponse,
    ModelSettings,
    OutputSchema,
    ToolCall,
    ToolSpec,
)

__all__ = [
    "Message",
    "Model",
    "ModelResponse",
    "ModelSettings",
    "OutputSchema",
    "ToolCall",
    "ToolSpec",
]
