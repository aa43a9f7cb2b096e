"""OpenAIChatModel against a real local HTTP server speaking the OpenAI chat-completions protocol."""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from llm_server import FakeChatServer, Reply
from seglens.errors import SeglensError
from seglens.llm import ChatReply, LLMError
from seglens.openai_client import OpenAIChatModel

MESSAGES = [{"role": "system", "content": "You name user segments."},
            {"role": "user", "content": "Segment 3 watches horror films late at night."}]
KEY_ENV = "SEGLENS_TEST_LLM_KEY"


@pytest.fixture
def server():
    with FakeChatServer(models=["test-model", "other-model"]) as srv:
        yield srv


@pytest.fixture
def make(server, monkeypatch):
    """A client for `server` with tiny backoff, so retries cost milliseconds."""
    monkeypatch.delenv(KEY_ENV, raising=False)

    def factory(**options) -> OpenAIChatModel:
        opts = {"base_url": server.base_url, "model": "test-model", "backoff": 0.01, "timeout": 5,
                "api_key_env": KEY_ENV, **options}
        return OpenAIChatModel(opts)
    return factory


def expect_error(call, reason: str, client: OpenAIChatModel | None = None) -> LLMError:
    """Run `call`, assert it raises LLMError(reason) whose one line names the endpoint and model."""
    with pytest.raises(LLMError) as info:
        call()
    err = info.value
    assert err.reason == reason, err.one_line()
    line = err.one_line()
    assert "\n" not in line and "\r" not in line and line == str(err)
    assert isinstance(err, SeglensError) and err.hint, line
    if client is not None:
        assert client.url in line and f"'{client.model}'" in line, line
    return err


# -- normal replies -------------------------------------------------------------------------------

def test_normal_reply_with_usage_and_tokens(server, make):
    server.script(Reply.ok("Night-owl horror fans", usage={"prompt_tokens": 31, "completion_tokens": 6,
                                                           "total_tokens": 37}))
    client = make()
    reply = client.chat(MESSAGES, max_tokens=50, temperature=0.2, seed=7)
    assert isinstance(reply, ChatReply)
    assert reply.text == "Night-owl horror fans"
    assert (reply.prompt_tokens, reply.completion_tokens) == (31, 6)
    assert reply.finish_reason == "stop" and reply.model == "test-model"
    assert reply.seconds > 0 and reply.tokens_per_second > 0
    assert reply.extra["attempts"] == 1 and "usage_estimated" not in reply.extra
    [req] = server.requests
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["content-type"] == "application/json"
    assert req.body == {"model": "test-model", "messages": MESSAGES, "max_tokens": 50, "temperature": 0.2,
                        "seed": 7, "stream": False}
    assert client.model_id == f"openai:test-model@{server.base_url}"
    assert client.context_tokens == 8192


def test_defaults_and_usage_estimate_when_server_omits_it(server, make):
    server.script(Reply.ok(lambda messages: messages[-1]["content"].upper(), usage=False))
    client = make(max_tokens=123)
    reply = client.chat(MESSAGES)
    assert reply.text == MESSAGES[-1]["content"].upper()
    assert reply.extra["usage_estimated"] is True
    assert reply.completion_tokens == client.count_tokens(reply.text)
    assert reply.prompt_tokens == sum(client.count_tokens(m["content"]) for m in MESSAGES)
    assert server.requests[0].body["max_tokens"] == 123


def test_count_tokens_is_a_cheap_estimate(make):
    client = make()
    assert client.count_tokens("") == 0
    assert client.count_tokens("abcd") == 1
    assert client.count_tokens("abcde") == 2
    assert client.count_tokens("x" * 4000) == 1000


def test_options_are_validated_and_base_url_normalised(server):
    client = OpenAIChatModel({"base_url": server.base_url + "/chat/completions/", "model": "test-model"})
    assert client.base_url == server.base_url and client.url == server.base_url + "/chat/completions"
    assert (client.timeout, client.retries, client.backoff, client.concurrency) == (60.0, 3, 1.0, 4)
    assert client.json_mode == "auto" and client.api_key_env == "OPENAI_API_KEY"
    auto = OpenAIChatModel({"base_url": server.base_url, "model": "m", "concurrency": "auto",
                            "context_tokens": "auto", "timeout": "2.5", "describer": "openai"})
    assert (auto.concurrency, auto.context_tokens, auto.timeout) == (4, 8192, 2.5)
    with pytest.raises(SeglensError, match="base_url"):
        OpenAIChatModel({"base_url": "localhost:8080", "model": "m"})
    with pytest.raises(SeglensError, match="model"):
        OpenAIChatModel({"base_url": server.base_url})
    with pytest.raises(SeglensError, match="json_mode"):
        OpenAIChatModel({"base_url": server.base_url, "model": "m", "json_mode": "maybe"})
    with pytest.raises(SeglensError, match="concurrency"):
        OpenAIChatModel({"base_url": server.base_url, "model": "m", "concurrency": 0})


def test_list_models(make):
    assert make().list_models() == ["test-model", "other-model"]


# -- API key --------------------------------------------------------------------------------------

def test_api_key_header_only_when_env_var_is_set(server, make, monkeypatch):
    client = make()
    client.chat(MESSAGES)
    assert "authorization" not in server.requests[-1].headers
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    client.chat(MESSAGES)
    assert server.requests[-1].headers["authorization"] == "Bearer sk-test-123"
    monkeypatch.setenv(KEY_ENV, "")
    client.chat(MESSAGES)
    assert "authorization" not in server.requests[-1].headers


def test_default_api_key_env_is_openai_api_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-default")
    OpenAIChatModel({"base_url": server.base_url, "model": "test-model"}).chat(MESSAGES)
    assert server.requests[-1].headers["authorization"] == "Bearer sk-default"


def test_unauthorised_names_the_key_variable(server, make):
    server.script(Reply.error(401, "Incorrect API key provided", code="invalid_api_key"))
    client = make()
    err = expect_error(lambda: client.chat(MESSAGES), "http", client)
    assert "401" in err.one_line() and KEY_ENV in err.one_line()
    assert len(server.requests) == 1


# -- JSON mode ------------------------------------------------------------------------------------

def test_json_mode_sends_response_format(server, make):
    server.script(Reply.ok('{"name": "Night owls"}'))
    reply = make(json_mode=True).chat(MESSAGES, json_mode=True)
    assert reply.text == '{"name": "Night owls"}' and reply.extra["json_mode"] is True
    assert server.requests[0].body["response_format"] == {"type": "json_object"}


def test_json_mode_only_when_the_call_asks_for_json(server, make):
    make(json_mode=True).chat(MESSAGES)
    assert "response_format" not in server.requests[-1].body


def test_json_mode_false_never_sends_response_format(server, make):
    make(json_mode=False).chat(MESSAGES, json_mode=True)
    assert "response_format" not in server.requests[-1].body


def test_json_mode_auto_falls_back_once_and_remembers(server, make):
    server.script(Reply.rejects_response_format(), Reply.ok('{"a": 1}'), Reply.ok('{"b": 2}'))
    client = make(json_mode="auto")
    first = client.chat(MESSAGES, json_mode=True)
    assert first.text == '{"a": 1}' and first.extra["json_mode"] is False
    assert [("response_format" in r.body) for r in server.requests] == [True, False]
    assert client.chat(MESSAGES, json_mode=True).text == '{"b": 2}'
    assert [("response_format" in r.body) for r in server.requests] == [True, False, False]


def test_json_mode_true_rejected_is_an_error_with_a_hint(server, make):
    server.script(Reply.rejects_response_format())
    client = make(json_mode=True)
    err = expect_error(lambda: client.chat(MESSAGES, json_mode=True), "http", client)
    assert "json_mode" in err.one_line() and "400" in err.one_line()
    assert len(server.requests) == 1


# -- retries --------------------------------------------------------------------------------------

def test_retries_on_429_honouring_retry_after(server, make):
    server.script(Reply.rate_limited(retry_after="1"), Reply.ok("done"))
    client = make(backoff=0.0)
    start = time.monotonic()
    reply = client.chat(MESSAGES)
    assert reply.text == "done" and reply.extra["attempts"] == 2
    assert len(server.requests) == 2
    gap = server.requests[1].at - server.requests[0].at
    assert 0.95 <= gap < 2.5, gap
    assert time.monotonic() - start < 3


def test_retry_after_is_capped_by_max_wait(server, make):
    server.script(Reply.rate_limited(retry_after="30"), Reply.ok("done"))
    client = make(max_wait=0.05)
    waits: list[float] = []
    client._sleep = waits.append
    assert client.chat(MESSAGES).text == "done"
    assert waits == [0.05]


def test_retries_on_500_and_503_then_success(server, make):
    server.script(Reply.server_error(500), Reply.unavailable(), Reply.ok("finally"))
    reply = make(retries=3).chat(MESSAGES)
    assert reply.text == "finally" and reply.extra["attempts"] == 3
    assert len(server.requests) == 3


def test_backoff_is_exponential_with_seeded_jitter(server, make):
    def waits_for(seed: int) -> list[float]:
        server.script(*[Reply.server_error(502)] * 4, Reply.ok("ok"))
        client = make(retries=4, backoff=1.0, seed=seed)
        waits: list[float] = []
        client._sleep = waits.append
        client.chat(MESSAGES)
        return waits

    first, again, other = waits_for(1), waits_for(1), waits_for(2)
    assert first == again and first != other
    assert len(first) == 4
    for n, wait in enumerate(first):
        assert 0.5 * 2 ** n <= wait <= 1.5 * 2 ** n


@pytest.mark.parametrize("status, message", [
    (400, "messages[0].role must be one of system, user, assistant"),
    (422, "temperature: value is not a valid float"),
])
def test_no_retry_on_other_4xx(server, make, status, message):
    server.script(Reply.http(status, message), Reply.ok("never reached"))
    client = make(retries=3)
    err = expect_error(lambda: client.chat(MESSAGES), "http", client)
    assert f"HTTP {status}: {message}" in err.one_line()
    assert len(server.requests) == 1


def test_no_retry_on_404(server, make):
    server.script(Reply.model_not_found("test-model"), Reply.ok("never reached"))
    client = make(retries=3)
    expect_error(lambda: client.chat(MESSAGES), "model", client)
    assert len(server.chat_requests) == 1


def test_gives_up_after_retries_with_reason_http(server, make):
    server.default = Reply.unavailable()
    client = make(retries=2)
    err = expect_error(lambda: client.chat(MESSAGES), "http", client)
    assert "503" in err.one_line() and "after 3 attempts" in err.one_line()
    assert "model is loading" in err.one_line()
    assert len(server.requests) == 3


def test_gives_up_on_429_with_a_concurrency_hint(server, make):
    server.default = Reply.rate_limited(retry_after="0")
    client = make(retries=1)
    err = expect_error(lambda: client.chat(MESSAGES), "http", client)
    assert "429" in err.one_line() and "concurrency" in err.one_line()
    assert len(server.requests) == 2


def test_zero_retries_means_one_attempt(server, make):
    server.default = Reply.server_error(500)
    expect_error(lambda: make(retries=0).chat(MESSAGES), "http")
    assert len(server.requests) == 1


@pytest.mark.parametrize("reset", [False, True])
def test_dropped_connection_is_retried(server, make, reset):
    server.script(Reply.dropped(reset=reset), Reply.ok("second time lucky"))
    assert make().chat(MESSAGES).text == "second time lucky"
    assert len(server.requests) == 2


def test_connection_always_dropped_gives_up(server, make):
    server.default = Reply.dropped()
    client = make(retries=2)
    err = expect_error(lambda: client.chat(MESSAGES), "unreachable", client)
    assert "closed the connection" in err.one_line()
    assert len(server.requests) == 3


# -- failures with a reason -----------------------------------------------------------------------

def test_timeout(server, make):
    server.script(Reply.slow(3.0, "too late"))
    client = make(timeout=0.3, retries=3)
    start = time.monotonic()
    err = expect_error(lambda: client.chat(MESSAGES), "timeout", client)
    assert time.monotonic() - start < 2.5  # gave up long before the 3 s reply, without retrying
    assert "0.3 s" in err.one_line() and "timeout" in err.one_line()
    assert len(server.requests) == 1  # a slow model is not hammered with repeats


def test_unreachable_closed_port(make):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make(base_url=f"http://127.0.0.1:{port}/v1")
    err = expect_error(lambda: client.chat(MESSAGES), "unreachable", client)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in err.one_line()
    assert "connection refused" in err.one_line()


def test_unreachable_unknown_host(make):
    client = make(base_url="http://seglens-no-such-host.invalid:8080/v1", timeout=2)
    err = expect_error(lambda: client.chat(MESSAGES), "unreachable", client)
    assert "seglens-no-such-host.invalid" in err.one_line()


def test_model_not_found_lists_what_the_server_offers(server, make):
    client = make(model="no-such-model")  # the fake server answers 404 model_not_found like real ones
    err = expect_error(lambda: client.chat(MESSAGES), "model", client)
    line = err.one_line()
    assert "--model" in line and "test-model" in line and "other-model" in line
    assert len(server.chat_requests) == 1


def test_model_missing_in_a_400_body(server, make):
    server.script(Reply.http(400, 'model "llama9:70b" not found, try pulling it first'))
    client = make()
    expect_error(lambda: client.chat(MESSAGES), "model", client)
    assert len(server.chat_requests) == 1


def test_wrong_path_404_hints_at_base_url(server, make):
    client = make(base_url=server.base_url.removesuffix("/v1") + "/api")
    err = expect_error(lambda: client.chat(MESSAGES), "model", client)
    assert "/v1" in err.hint


def test_context_overflow(server, make):
    server.script(Reply.context_overflow(limit=4096, requested=5000), Reply.ok("never reached"))
    client = make(context_tokens=4096)
    err = expect_error(lambda: client.chat(MESSAGES), "context", client)
    assert "4096" in err.one_line() and "context_tokens" in err.one_line()
    assert len(server.requests) == 1


def test_context_overflow_reported_as_5xx_is_not_retried(server, make):
    server.default = Reply.server_error(500, "the request exceeds the available context size, try increasing it")
    expect_error(lambda: make().chat(MESSAGES), "context")
    assert len(server.requests) == 1


@pytest.mark.parametrize("reply, reason", [
    (Reply.not_json(), "parse"),
    (Reply.not_json("", content_type="text/plain"), "parse"),
    (Reply.no_choices(), "parse"),
    (Reply(json_body=["not", "an", "object"]), "parse"),
    (Reply.empty_choices(), "empty"),
    (Reply.empty(), "empty"),
    (Reply.ok(None), "empty"),
    (Reply.ok("   \n  "), "empty"),
    (Reply.truncated(""), "truncated"),
], ids=["html", "empty-body", "no-choices", "json-list", "empty-choices", "empty-content", "null-content",
        "blank-content", "truncated"])
def test_malformed_replies(server, make, reply, reason):
    server.script(reply)
    client = make()
    expect_error(lambda: client.chat(MESSAGES), reason, client)
    assert len(server.requests) == 1


def test_truncated_with_content_is_returned_for_the_caller_to_judge(server, make):
    server.script(Reply.truncated('{"name": "Night ow'))
    reply = make().chat(MESSAGES)
    assert reply.text == '{"name": "Night ow' and reply.finish_reason == "length"


def test_error_object_in_a_200_reply(server, make):
    server.script(Reply(status=200, json_body={"error": {"message": "model 'x' not found"}}))
    expect_error(lambda: make().chat(MESSAGES), "model")


# -- concurrency ----------------------------------------------------------------------------------

def test_chat_many_respects_concurrency_and_keeps_order(server, make):
    server.default = Reply.slow(0.2, lambda messages: "reply to " + messages[-1]["content"])
    client = make(concurrency=3)
    conversations = [[{"role": "user", "content": f"segment {i}"}] for i in range(9)]
    replies = client.chat_many(conversations, max_tokens=20)
    assert [r.text for r in replies] == [f"reply to segment {i}" for i in range(9)]
    assert server.max_in_flight == 3  # never more, and it did run in parallel
    assert all(r.body["max_tokens"] == 20 for r in server.requests)


def test_concurrency_limit_holds_across_threads_calling_chat(server, make):
    server.default = Reply.slow(0.1, "ok")
    client = make(concurrency=2)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: client.chat(MESSAGES), range(8)))
    assert all(r.text == "ok" for r in replies)
    assert server.max_in_flight == 2


def test_chat_many_errors_raise_or_come_back_in_place(server, make):
    def decide(request):
        text = request.messages[-1]["content"]
        return Reply.context_overflow() if text == "too long" else Reply.ok(text)

    server.default = decide
    client = make(concurrency=2)
    conversations = [[{"role": "user", "content": t}] for t in ("a", "too long", "c")]
    results = client.chat_many(conversations, return_exceptions=True)
    assert results[0].text == "a" and results[2].text == "c"
    assert isinstance(results[1], LLMError) and results[1].reason == "context"
    expect_error(lambda: client.chat_many(conversations), "context", client)
    assert client.chat_many([]) == []


def test_retry_waits_do_not_hold_a_concurrency_slot(server, make):
    """While one request sleeps before its retry, another may use the only slot."""
    asked = {"first": 0}

    def decide(request):
        if request.messages[-1]["content"] == "first":
            asked["first"] += 1
            if asked["first"] == 1:
                return Reply.rate_limited(retry_after="0.5")
        return Reply.ok(request.messages[-1]["content"])

    server.default = decide
    client = make(concurrency=1)
    sleeping = threading.Event()

    def sleep(seconds: float) -> None:
        sleeping.set()
        time.sleep(seconds)

    client._sleep = sleep
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(client.chat, [{"role": "user", "content": "first"}])
        assert sleeping.wait(timeout=5)  # the first got its 429 and now waits 0.5 s for the retry
        start = time.monotonic()
        second = pool.submit(client.chat, [{"role": "user", "content": "second"}])
        assert second.result(timeout=5).text == "second"
        assert time.monotonic() - start < 0.45  # it did not queue behind the first one's wait
        assert first.result(timeout=5).text == "first"
    assert server.max_in_flight == 1 and len(server.requests) == 3
