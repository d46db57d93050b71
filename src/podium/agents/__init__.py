"""Agents: plain Python (`@agent`, `FunctionAgent`) and models with tools (`LLMAgent`)."""

from podium.agents.base import Agent, AgentBase
from podium.agents.function import FunctionAgent, agent
from podium.agents.llm import LLMAgent

__all__ = ["Agent", "AgentBase", "FunctionAgent", "LLMAgent", "agent"]
