"""A cache of language-model replies keyed by model, messages and parameters, so a re-run or a
re-describe costs nothing. SQLite beside the embedding cache; JSON values, no pickle."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .embed_cache import cache_dir
from .llm import ChatReply


class LLMCache:
    def __init__(self, path: Path | None = None) -> None:
        path = path or cache_dir() / "llm.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS reply (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._lock = threading.Lock()  # describers call from several threads; one connection, one at a time

    @staticmethod
    def key(model_id: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
        blob = json.dumps([model_id, messages, params], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def get(self, key: str) -> ChatReply | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM reply WHERE key = ?", (key,)).fetchone()
        if not row:
            return None
        d = json.loads(row[0])
        return ChatReply(**d, extra={"cached": True})

    def put(self, key: str, reply: ChatReply) -> None:
        d = {"text": reply.text, "model": reply.model, "prompt_tokens": reply.prompt_tokens,
             "completion_tokens": reply.completion_tokens, "seconds": reply.seconds,
             "finish_reason": reply.finish_reason}
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO reply (key, value) VALUES (?, ?)", (key, json.dumps(d)))


def cached_chat(model: Any, messages: list[dict[str, str]], cache: LLMCache | None, **params: Any) -> ChatReply:
    if cache is None:
        return model.chat(messages, **params)
    key = LLMCache.key(model.model_id, messages, params)
    hit = cache.get(key)
    if hit is not None:
        return hit
    reply = model.chat(messages, **params)
    cache.put(key, reply)
    return reply
