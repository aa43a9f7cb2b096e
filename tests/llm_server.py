"""A real, local OpenAI-compatible chat server for tests.

`FakeChatServer` is an `http.server.ThreadingHTTPServer` on 127.0.0.1 (a free port) running in a
background thread. It speaks the actual protocol over real sockets -- POST /v1/chat/completions and
GET /v1/models -- so clients are tested end to end, not through a mocked library.

Each test scripts it: `server.script(Reply.ok("hi"), Reply.unavailable(), ...)` queues one reply per
chat request; when the queue is empty `server.default` answers (a `Reply`, or a callable taking the
`Recorded` request and returning one). Every request is recorded (headers with lower-cased names,
parsed JSON body) in `server.requests`, and `server.max_in_flight` is the most chat requests it was
ever handling at once.

    with FakeChatServer(models=["tiny"]) as server:
        server.script(Reply.rate_limited(retry_after="1"), Reply.ok("hello"))
        client = OpenAIChatModel(base_url=server.base_url, model="tiny")
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None
    raw: bytes
    at: float  # time.monotonic() on arrival

    @property
    def messages(self) -> list[dict[str, str]]:
        return (self.body or {}).get("messages", []) if isinstance(self.body, dict) else []


@dataclass
class Reply:
    """What the server does with one chat request.

    A normal reply has `content` (a string, or a callable taking the request's messages); `status`,
    `json_body` or `raw_body` replace it with anything else. `delay` sleeps first; `drop` closes the
    connection without answering (`reset=True` sends a TCP reset instead of a clean close).
    """

    content: str | Callable[[list[dict[str, str]]], str] | None = "ok"
    finish_reason: str | None = "stop"
    usage: bool | dict[str, int] = True  # True: computed; False: omitted; dict: as given
    status: int = 200
    json_body: Any = None
    raw_body: bytes | str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    reset: bool = False
    model: str | None = None  # the "model" field of the reply; default: the requested one

    # -- normal replies ---------------------------------------------------------------------------
    @classmethod
    def ok(cls, content: str | Callable[[list[dict[str, str]]], str] = "ok", **kw: Any) -> Reply:
        return cls(content=content, **kw)

    @classmethod
    def slow(cls, seconds: float, content: str | Callable = "ok", **kw: Any) -> Reply:
        return cls(content=content, delay=seconds, **kw)

    # -- HTTP errors, with bodies shaped like real servers' ---------------------------------------
    @classmethod
    def error(cls, status: int, message: str, *, kind: str = "invalid_request_error", code: str | None = None,
              **kw: Any) -> Reply:
        return cls(status=status, json_body={"error": {"message": message, "type": kind, "param": None,
                                                       "code": code}}, **kw)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1", **kw: Any) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls.error(429, "Rate limit reached, please retry later", kind="rate_limit_error",
                         code="rate_limit_exceeded", headers=headers, **kw)

    @classmethod
    def server_error(cls, status: int = 500, message: str = "Internal server error", **kw: Any) -> Reply:
        return cls.error(status, message, kind="server_error", **kw)

    @classmethod
    def unavailable(cls, **kw: Any) -> Reply:
        return cls.error(503, "Service unavailable: model is loading", kind="server_error", **kw)

    @classmethod
    def context_overflow(cls, limit: int = 4096, requested: int = 5000, **kw: Any) -> Reply:
        return cls.error(400, f"This model's maximum context length is {limit} tokens. However, you requested "
                              f"{requested} tokens. Please reduce the length of the messages.",
                         code="context_length_exceeded", **kw)

    @classmethod
    def rejects_response_format(cls, **kw: Any) -> Reply:
        return cls.error(400, "Unsupported parameter: 'response_format' is not supported by this server",
                         code="unsupported_parameter", **kw)

    @classmethod
    def model_not_found(cls, model: str = "missing", **kw: Any) -> Reply:
        return cls.error(404, f"The model `{model}` does not exist or you do not have access to it.",
                         code="model_not_found", **kw)

    @classmethod
    def http(cls, status: int, message: str = "error", **kw: Any) -> Reply:
        return cls.error(status, message, **kw)

    # -- malformed replies ------------------------------------------------------------------------
    @classmethod
    def not_json(cls, text: str = "<html><body>502 Bad Gateway</body></html>", content_type: str = "text/html",
                 **kw: Any) -> Reply:
        return cls(raw_body=text, content_type=content_type, **kw)

    @classmethod
    def no_choices(cls, **kw: Any) -> Reply:
        return cls(json_body={"id": "cmpl-x", "object": "chat.completion", "created": 0, "model": "m"}, **kw)

    @classmethod
    def empty_choices(cls, **kw: Any) -> Reply:
        return cls(json_body={"id": "cmpl-x", "object": "chat.completion", "created": 0, "model": "m",
                              "choices": []}, **kw)

    @classmethod
    def empty(cls, **kw: Any) -> Reply:
        return cls(content="", **kw)

    @classmethod
    def truncated(cls, content: str = "", **kw: Any) -> Reply:
        return cls(content=content, finish_reason="length", **kw)

    @classmethod
    def dropped(cls, *, reset: bool = False, **kw: Any) -> Reply:
        return cls(drop=True, reset=reset, **kw)


Decider = Callable[[Recorded], Reply]


class FakeChatServer:
    """A scriptable OpenAI-compatible server on 127.0.0.1; use as a context manager (or start/stop)."""

    def __init__(self, *replies: Reply | Decider, default: Reply | Decider | None = None,
                 models: list[str] | tuple[str, ...] = ("test-model",), check_model: bool = True) -> None:
        self.models = list(models)
        self.check_model = check_model  # unknown model -> 404 model_not_found, like real servers
        self.default: Reply | Decider = default if default is not None else Reply.ok("ok")
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: deque[Reply | Decider] = deque(replies)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeChatServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-chat-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a slow reply
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- addresses --------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting and assertions -----------------------------------------------------------------
    def script(self, *replies: Reply | Decider) -> FakeChatServer:
        """Queue replies, one per chat request, in order."""
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def reset_stats(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = self.in_flight

    def _next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            item = self._queue.popleft() if self._queue else self.default
        return item(request) if callable(item) and not isinstance(item, Reply) else item

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeChatServer  # set on the per-server subclass
    server_version = "FakeChatServer/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _read(self) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw,
                           time.monotonic())
        self.fake._record(request)
        return request

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        # A request stops counting as in flight before its reply is written: once the client has the
        # reply it may send the next request, which must not find this one still counted.
        self._leave_once()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            self.close_connection = True

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), headers=headers)

    def do_GET(self) -> None:  # noqa: N802
        request = self._read()
        if request.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.fake.models]})
        else:
            self._send_json(404, {"error": {"message": "File Not Found", "type": "not_found_error"}})

    def do_POST(self) -> None:  # noqa: N802
        request = self._read()
        if request.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": "File Not Found", "type": "not_found_error"}})
            return
        self.fake._enter()
        self._counted = True
        try:
            self._answer(request)
        finally:
            self._leave_once()

    def _leave_once(self) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            self.fake._leave()

    def _answer(self, request: Recorded) -> None:
        fake = self.fake
        if not isinstance(request.body, dict) or not isinstance(request.body.get("messages"), list):
            self._send_json(400, {"error": {"message": "request body must be JSON with a messages list",
                                            "type": "invalid_request_error"}})
            return
        reply = fake._next_reply(request)
        if reply.delay and fake._stopping.wait(reply.delay):
            self.close_connection = True
            return
        if reply.drop:
            self.close_connection = True
            if reply.reset:  # RST instead of FIN
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        requested = request.body.get("model")
        if fake.check_model and reply.status == 200 and requested not in fake.models:
            reply = Reply.model_not_found(str(requested))
        if reply.raw_body is not None:
            raw = reply.raw_body.encode("utf-8") if isinstance(reply.raw_body, str) else reply.raw_body
            self._send(reply.status, raw, reply.content_type, reply.headers)
            return
        if reply.json_body is not None:
            self._send_json(reply.status, reply.json_body, reply.headers)
            return
        content = reply.content(request.messages) if callable(reply.content) else reply.content
        data: dict[str, Any] = {
            "id": f"chatcmpl-{len(fake.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or requested,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": reply.finish_reason}],
        }
        if reply.usage is True:
            prompt = sum(len(str(m.get("content", ""))) for m in request.messages)
            data["usage"] = {"prompt_tokens": prompt // 4 + 1, "completion_tokens": len(content or "") // 4 + 1,
                             "total_tokens": prompt // 4 + len(content or "") // 4 + 2}
        elif isinstance(reply.usage, dict):
            data["usage"] = reply.usage
        self._send_json(reply.status, data, reply.headers)
