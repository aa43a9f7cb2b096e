"""The contract every language-model backend meets, so describers and `ask` never care whether the
model runs in-process (transformers) or behind an OpenAI-compatible server.

A backend raises `LLMError` (a `SeglensError`: one line, names the backend and what to do) for every
failure a user can meet: unreachable server, wrong model name, timeout, empty or truncated reply,
context overflow, missing model file. Describers catch it and fall back to the keyword describer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from .errors import SeglensError


class LLMError(SeglensError):
    """A language model could not answer; `reason` is a short machine-readable cause."""

    def __init__(self, message: str, *, reason: str = "error", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason  # unreachable | timeout | http | empty | truncated | context | model | parse


@dataclass
class ChatReply:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


class ChatModel(Protocol):
    """A chat model. `model_id` names it in caches and manifests (backend + model + quantization)."""

    model_id: str
    context_tokens: int  # how many prompt + reply tokens it accepts

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 400, temperature: float = 0.0,
             json_mode: bool = False, seed: int = 42,
             line_labels: Sequence[tuple[str, int]] | None = None) -> ChatReply:
        """Answer `messages` ([{"role": "system"|"user"|"assistant", "content": str}]).

        `line_labels` [(label, max tokens), ...] says the reply is those labelled lines in order; a
        backend that controls decoding (local) enforces it, one behind an HTTP API may ignore it."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` (an estimate is fine), so prompts can be trimmed to fit the context."""
        ...
