"""A `ChatModel` backed by any OpenAI-compatible chat-completions server: Ollama, vLLM, the llama.cpp
server, LM Studio, OpenAI itself.

Standard library only (http.client). Each request opens its own connection, so one instance can be
shared by many threads; a semaphore caps how many requests are in flight at once, and `chat_many`
runs a batch through a thread pool without exceeding that cap.

Every failure is an `LLMError` whose one line names the endpoint, the model and what to do, with a
machine-readable `reason`:

  unreachable  connection refused, DNS failure, or the server kept closing the connection
  timeout      no answer within `timeout` seconds
  http         any other status (after retries for 429 and 5xx); status and a snippet of the body
  model        404, or an error body saying the model does not exist
  context      the prompt does not fit the model's context
  empty        no choices, or an empty message
  truncated    finish_reason "length" and nothing written
  parse        the body is not JSON, or has no "choices"

429, 5xx and dropped connections are retried with exponential backoff (jittered from a seeded RNG,
so runs are repeatable) or after the server's Retry-After; other 4xx are never retried.
"""
from __future__ import annotations

import http.client
import json
import math
import os
import random
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from . import __version__
from .errors import SeglensError
from .llm import ChatReply, LLMError

DEFAULT_OPTIONS: dict[str, Any] = {
    "base_url": None,  # e.g. http://127.0.0.1:8080/v1 ; requests go to {base_url}/chat/completions
    "model": None,
    "api_key_env": "OPENAI_API_KEY",  # sent as "Authorization: Bearer ..." only when that variable is set
    "timeout": 60.0,  # seconds per request (connect, and each wait for data)
    "retries": 3,  # extra attempts after the first, on 429 / 5xx / dropped connections
    "backoff": 1.0,  # base seconds: waits are backoff * 2**n * jitter(0.5..1.5)
    "max_wait": 60.0,  # cap on any single wait, including the server's Retry-After
    "concurrency": 4,  # requests in flight at once, across all threads using this instance
    "json_mode": "auto",  # how json_mode=True calls are carried out: true | false | "auto"
    "context_tokens": 8192,
    "max_tokens": 400,  # reply budget when chat() is not given one
    "seed": 0,  # seeds the backoff jitter
}

_RESET_ERRORS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, http.client.IncompleteRead)
_CONTEXT_RE = re.compile(
    r"context[ _-]?(length|size|window)|maximum context|too many tokens|context_length_exceeded"
    r"|exceeds? (the )?(available |maximum )?context|prompt is too long|input is too long",
    re.IGNORECASE)
_MODEL_RE = re.compile(
    r"model\b[^.\n]{0,120}?\b(not found|does not exist|doesn't exist|do not exist|is not available|unknown)"
    r"|\b(unknown|invalid|no such) model|model_not_found|no models? (are |is )?loaded",
    re.IGNORECASE)
_RESPONSE_FORMAT_RE = re.compile(r"response_format|json_object", re.IGNORECASE)


def _snippet(text: str, limit: int = 200) -> str:
    """One short line of an error body: the `error.message` of a JSON body, else the text itself."""
    message = text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err
        if isinstance(err, str):
            message = err
        elif err is not None:
            message = json.dumps(err)
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _as_bool_or_auto(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "none"):
        return False
    raise SeglensError(f"llm option json_mode must be true, false or \"auto\", not {value!r}")


def _number(options: dict[str, Any], key: str, kind: type, minimum: float) -> Any:
    value = options[key]
    if value is None or (isinstance(value, str) and value.strip().lower() in ("auto", "")):
        value = DEFAULT_OPTIONS[key]  # "auto" (as config files say) means this backend's default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise SeglensError(f"llm option {key} must be a number, not {value!r}") from None
    if number < minimum:
        raise SeglensError(f"llm option {key} must be at least {minimum}, not {value!r}")
    return number


class OpenAIChatModel:
    """Chat with a model behind an OpenAI-compatible `/chat/completions` endpoint.

    `OpenAIChatModel({"base_url": "http://127.0.0.1:11434/v1", "model": "qwen2.5:3b"})`; keyword
    arguments override the options dict. Thread-safe.
    """

    def __init__(self, options: dict[str, Any] | None = None, **overrides: Any) -> None:
        opts = {**DEFAULT_OPTIONS, **(options or {}), **overrides}
        base_url = str(opts["base_url"] or "").strip().rstrip("/")
        if base_url.endswith("/chat/completions"):
            base_url = base_url[: -len("/chat/completions")]
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SeglensError(
                f"llm option base_url must be an http(s) URL, not {opts['base_url']!r}",
                hint="e.g. http://127.0.0.1:11434/v1 for Ollama or http://127.0.0.1:8080/v1 for llama.cpp")
        if not opts["model"]:
            raise SeglensError("llm option model is not set", hint="pass --model, the name the server knows the model by")
        self.base_url = base_url
        self.url = f"{base_url}/chat/completions"
        self.model = str(opts["model"])
        self.model_id = f"openai:{self.model}@{base_url}"
        self.api_key_env = str(opts["api_key_env"] or "")
        self.timeout = _number(opts, "timeout", float, 0.001)
        self.retries = _number(opts, "retries", int, 0)
        self.backoff = _number(opts, "backoff", float, 0)
        self.max_wait = _number(opts, "max_wait", float, 0)
        self.concurrency = _number(opts, "concurrency", int, 1)
        self.context_tokens = _number(opts, "context_tokens", int, 1)
        self.max_tokens = _number(opts, "max_tokens", int, 1)
        self.json_mode = _as_bool_or_auto(opts["json_mode"])
        self._json_supported: bool | None = None  # learned under "auto"
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        self._path_prefix = parts.path.rstrip("/")
        self._slots = threading.Semaphore(self.concurrency)
        self._lock = threading.Lock()
        self._rng = random.Random(opts["seed"])
        self._sleep = time.sleep  # replaceable in tests

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.model_id!r})"

    # -- the ChatModel protocol ----------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """A cheap estimate: about four characters per token."""
        return math.ceil(len(text) / 4)

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int | None = None, temperature: float = 0.0,
             json_mode: bool = False, seed: int = 42, line_labels: Any = None) -> ChatReply:
        """One completion. `json_mode=True` asks for a JSON object: sent as response_format unless
        the json_mode option is false (or "auto" learned that this server rejects it). `line_labels`
        cannot be enforced through the chat-completions API and is ignored (the prompt asks for them)."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": int(max_tokens if max_tokens is not None else self.max_tokens),
            "temperature": temperature,
            "seed": seed,
            "stream": False,
        }
        if json_mode and self.json_mode is not False and self._json_supported is not False:
            payload["response_format"] = {"type": "json_object"}
        started = time.monotonic()
        retry = 0
        attempts = 0
        waited = 0.0
        while True:
            attempts += 1
            try:
                status, headers, body, seconds = self._request("POST", "/chat/completions", payload)
            except _Dropped as exc:
                if retry < self.retries:
                    waited += self._wait(retry, None)
                    retry += 1
                    continue
                raise self._error(
                    f"closed the connection without answering ({exc}), {attempts} attempt(s)", "unreachable",
                    "is the server still running? check its log") from None
            if status == 200:
                reply = self._parse_reply(body, seconds, payload)
                reply.extra.update(attempts=attempts, waited=round(waited, 3),
                                   total_seconds=round(time.monotonic() - started, 3),
                                   json_mode="response_format" in payload)
                return reply
            text = body.decode("utf-8", "replace")
            if (400 <= status < 500 and "response_format" in payload and self.json_mode == "auto"
                    and _RESPONSE_FORMAT_RE.search(text) and not _CONTEXT_RE.search(text)):
                with self._lock:
                    self._json_supported = False
                del payload["response_format"]
                continue  # once: the key is gone now, so this branch cannot repeat
            retriable = (status == 429 or status >= 500) and not (_CONTEXT_RE.search(text) or _MODEL_RE.search(text))
            if retriable and retry < self.retries:
                waited += self._wait(retry, headers.get("retry-after"))
                retry += 1
                continue
            raise self._http_error(status, text, attempts, "response_format" in payload)

    # -- extras ----------------------------------------------------------------------------------

    def chat_many(self, conversations: list[list[dict[str, str]]], *, return_exceptions: bool = False,
                  **kw: Any) -> list[Any]:
        """`chat` each conversation, up to `concurrency` at once; replies in input order.

        The first failure is raised (after the batch finishes) unless `return_exceptions`, which puts
        each `LLMError` in its conversation's place instead.
        """
        if not conversations:
            return []

        def one(messages: list[dict[str, str]]) -> Any:
            try:
                return self.chat(messages, **kw)
            except LLMError as exc:
                if return_exceptions:
                    return exc
                raise

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(conversations)),
                                thread_name_prefix="seglens-llm") as pool:
            futures = [pool.submit(one, messages) for messages in conversations]
            return [f.result() for f in futures]

    def list_models(self) -> list[str]:
        """The model names the server offers (GET {base_url}/models)."""
        try:
            status, _, body, _ = self._request("GET", "/models", None)
        except _Dropped as exc:
            raise self._error(f"closed the connection without answering ({exc})", "unreachable",
                              "is the server still running? check its log") from None
        text = body.decode("utf-8", "replace")
        if status != 200:
            raise self._error(f"GET {self.base_url}/models answered HTTP {status}: {_snippet(text)}", "http",
                              "check base_url")
        try:
            data = json.loads(text)
            return [str(m["id"]) for m in data["data"]]
        except (ValueError, KeyError, TypeError):
            raise self._error(f"GET {self.base_url}/models did not answer a model list: {_snippet(text)}",
                              "parse", "is base_url an OpenAI-compatible API (usually ending in /v1)?") from None

    # -- internals -------------------------------------------------------------------------------

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": f"seglens/{__version__}"}
        if has_body:
            headers["Content-Type"] = "application/json"
        key = os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _request(self, method: str, path: str, payload: dict[str, Any] | None
                 ) -> tuple[int, dict[str, str], bytes, float]:
        """One round trip under the concurrency cap: (status, lower-cased headers, body, seconds).
        Raises LLMError for unreachable / timeout, `_Dropped` for a connection closed mid-way."""
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        with self._slots:
            started = time.monotonic()
            conn = cls(self._host, self._port, timeout=self.timeout)
            try:
                conn.request(method, self._path_prefix + path, body=data, headers=self._headers(data is not None))
                response = conn.getresponse()
                body = response.read()
                headers = {k.lower(): v for k, v in response.getheaders()}
                return response.status, headers, body, time.monotonic() - started
            except (TimeoutError, socket.timeout):
                raise self._error(f"no answer within {self.timeout:g} s", "timeout",
                                  "raise the timeout option, lower max_tokens, or use a smaller/faster model") from None
            except _RESET_ERRORS as exc:  # includes http.client.RemoteDisconnected
                raise _Dropped(type(exc).__name__) from None
            except http.client.HTTPException as exc:
                raise self._error(f"answered something that is not HTTP ({type(exc).__name__})", "parse",
                                  "is base_url the server's OpenAI-compatible API, with the right http/https?") from None
            except OSError as exc:  # refused, DNS, no route, TLS
                what = "connection refused" if isinstance(exc, ConnectionRefusedError) else (
                    f"cannot resolve host '{self._host}'" if isinstance(exc, socket.gaierror) else
                    " ".join(str(exc).split()) or type(exc).__name__)
                raise self._error(f"cannot reach the server ({what})", "unreachable",
                                  "start the LLM server, or fix base_url (e.g. http://127.0.0.1:11434/v1)") from None
            finally:
                conn.close()

    def _wait(self, retry: int, retry_after: str | None) -> float:
        """Sleep before retry number `retry` (0-based); the server's Retry-After wins when given."""
        delay = _parse_retry_after(retry_after)
        if delay is None:
            with self._lock:
                jitter = 0.5 + self._rng.random()
            delay = self.backoff * (2 ** retry) * jitter
        delay = max(0.0, min(delay, self.max_wait))
        if delay:
            self._sleep(delay)
        return delay

    def _error(self, what: str, reason: str, hint: str | None) -> LLMError:
        return LLMError(f"LLM server {self.url} (model '{self.model}'): {what}", reason=reason, hint=hint)

    def _http_error(self, status: int, text: str, attempts: int, sent_json: bool) -> LLMError:
        snippet = _snippet(text) or "(empty body)"
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        if _CONTEXT_RE.search(text):
            return self._error(f"the prompt does not fit the model's context (HTTP {status}: {snippet})", "context",
                               f"lower the context_tokens option (now {self.context_tokens}) so prompts are trimmed, "
                               "or start the server with a larger context")
        if status == 404 or _MODEL_RE.search(text):
            offered = self._offered_models()
            hint = f"check --model against the server's model list (GET {self.base_url}/models)"
            if offered:
                hint += f"; it offers: {offered}"
            if status == 404 and not re.search(r"model", text, re.IGNORECASE):
                hint += "; and check that base_url is the OpenAI-compatible API (usually ending in /v1)"
            return self._error(f"model not found (HTTP {status}: {snippet})", "model", hint)
        if sent_json and _RESPONSE_FORMAT_RE.search(text):
            hint = "set the json_mode option to false (or \"auto\"): this server rejects response_format"
        elif status in (401, 403):
            hint = f"set {self.api_key_env or 'api_key_env'} to a valid API key" if self.api_key_env else \
                "set the api_key_env option to the variable holding the API key"
        elif status == 429:
            hint = "the server is rate limiting; lower the concurrency option or try again later"
        elif status >= 500:
            hint = "the server failed; check its log"
        else:
            hint = "check the llm options against what the server accepts"
        return self._error(f"HTTP {status}{tried}: {snippet}", "http", hint)

    def _offered_models(self) -> str:
        """Up to five model names from the server, for a hint; '' when it cannot tell us."""
        try:
            names = self.list_models()
        except LLMError:
            return ""
        shown = ", ".join(names[:5])
        return shown + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")

    def _parse_reply(self, body: bytes, seconds: float, payload: dict[str, Any]) -> ChatReply:
        text = body.decode("utf-8", "replace")
        try:
            data = json.loads(text)
        except ValueError:
            raise self._error(f"the reply is not JSON: {_snippet(text, 120) or '(empty body)'}", "parse",
                              "is base_url the server's OpenAI-compatible API (usually ending in /v1)?") from None
        if not isinstance(data, dict) or "choices" not in data:
            if isinstance(data, dict) and "error" in data:  # some servers answer 200 with an error object
                raise self._http_error(200, text, 1, False)
            raise self._error(f"the reply has no choices: {_snippet(text, 120)}", "parse",
                              "is base_url the server's OpenAI-compatible API (usually ending in /v1)?")
        choices = data["choices"]
        if not isinstance(choices, list) or not choices:
            raise self._error("the reply has no choices", "empty", "try again, or another model")
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else choice.get("text")
        content = content if isinstance(content, str) else ""
        finish = choice.get("finish_reason")
        if not content.strip():
            if finish == "length":
                raise self._error(f"the reply was cut off before any text (finish_reason length, max_tokens "
                                  f"{payload['max_tokens']})", "truncated",
                                  "raise max_tokens; a reasoning model may spend it all thinking")
            raise self._error(f"the reply is empty (finish_reason {finish})", "empty", "try again, or another model")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        extra: dict[str, Any] = {"id": data.get("id")}
        if not isinstance(prompt_tokens, int) or not isinstance(completion_tokens, int):
            extra["usage_estimated"] = True
            completion_tokens = completion_tokens if isinstance(completion_tokens, int) else self.count_tokens(content)
            prompt_tokens = prompt_tokens if isinstance(prompt_tokens, int) else sum(
                self.count_tokens(str(m.get("content") or "")) for m in payload["messages"] if isinstance(m, dict))
        return ChatReply(text=content, model=str(data.get("model") or self.model), prompt_tokens=prompt_tokens,
                         completion_tokens=completion_tokens, seconds=seconds, finish_reason=finish, extra=extra)


class _Dropped(Exception):
    """The connection closed or reset before a full reply: worth retrying."""


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
