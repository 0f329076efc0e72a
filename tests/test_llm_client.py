"""The LLM client against a real OpenAI-compatible HTTP server (tests/support/fake_llm.py)."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from config import Settings
from data_pipeline.errors import LLMError
from data_pipeline.llm.client import LLMClient, extract_json, strip_think
from tests.support.fake_llm import ConcurrencyProbe, FakeLLMServer, Reply

MESSAGES = [{"role": "user", "content": "你好"}]


def client_for(server: FakeLLMServer, **overrides) -> LLMClient:
    options = {"base_url": server.base_url, "model": "fake", "timeout": 5.0, "max_retries": 2,
               "backoff_base": 0.01, "concurrency": 4}
    options.update(overrides)
    return LLMClient(**options)


def scripted(*replies: Reply):
    """A responder giving `replies` in order, then repeating the last one."""
    state = {"n": 0}
    lock = threading.Lock()

    def responder(request):
        with lock:
            index = min(state["n"], len(replies) - 1)
            state["n"] += 1
        return replies[index]
    return responder


def test_answer_without_think_block_and_usage_logged(caplog):
    with FakeLLMServer(lambda r: Reply(content="<think>先想一想 {\"x\": 1}</think>\n公司信息表")) as server:
        client = client_for(server)
        with caplog.at_level(logging.INFO, logger="LLMClient"):
            assert client.chat(MESSAGES) == "公司信息表"
    assert client.usage_summary() == {"calls": 1, "prompt_tokens": 10, "completion_tokens": 5}
    assert "prompt=10 completion=5" in caplog.text
    assert server.chat_requests()[0]["messages"] == MESSAGES


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_rate_limits_are_retried(status):
    with FakeLLMServer(scripted(Reply(status=status), Reply(status=status), Reply(content="好"))) as server:
        assert client_for(server, max_retries=2).chat(MESSAGES) == "好"
        assert len(server.chat_requests()) == 3


def test_a_rate_limit_waits_as_long_as_its_retry_after_asks(caplog):
    with FakeLLMServer(scripted(Reply(status=429, headers={"Retry-After": "0.4"}), Reply(content="好"))) as server:
        with caplog.at_level(logging.WARNING, logger="LLMClient"):
            assert client_for(server, backoff_base=0.01).chat(MESSAGES) == "好"
    assert "0.4s 后重试 (1/2): HTTP 429" in caplog.text   # not the 0.01 s backoff of this client


def test_persistent_failure_is_an_llm_error_after_the_retries():
    with FakeLLMServer(lambda r: Reply(status=500)) as server:
        with pytest.raises(LLMError) as caught:
            client_for(server, max_retries=1).chat(MESSAGES)
        assert len(server.chat_requests()) == 2
    assert "HTTP 500" in caught.value.details


def test_timeouts_are_retried_then_fail():
    with FakeLLMServer(lambda r: Reply(hang=True)) as server:
        started = time.monotonic()
        with pytest.raises(LLMError):
            client_for(server, timeout=0.3, max_retries=1).chat(MESSAGES)
        elapsed = time.monotonic() - started
        assert len(server.chat_requests()) == 2
    assert elapsed < 3


def test_a_slow_answer_after_a_timeout_is_used():
    with FakeLLMServer(scripted(Reply(hang=True), Reply(content="第二次"))) as server:
        assert client_for(server, timeout=0.3, max_retries=1).chat(MESSAGES) == "第二次"


def test_client_errors_are_not_retried():
    with FakeLLMServer(lambda r: Reply(status=400)) as server:
        with pytest.raises(LLMError, match="HTTP 400"):
            client_for(server, max_retries=3).chat(MESSAGES)
        assert len(server.chat_requests()) == 1


@pytest.mark.parametrize("body", ["<html>bad gateway</html>", '{"choices": []}', '{"unexpected": true}'])
def test_malformed_or_empty_responses_are_retried_then_fail(body):
    with FakeLLMServer(lambda r: Reply(raw_body=body)) as server:
        with pytest.raises(LLMError) as caught:
            client_for(server, max_retries=1).chat(MESSAGES)
        assert len(server.chat_requests()) == 2
    assert "html" not in caught.value.details


def test_empty_answer_then_real_answer():
    with FakeLLMServer(scripted(Reply(content="<think>只有思考</think>"), Reply(content="答案"))) as server:
        assert client_for(server).chat(MESSAGES) == "答案"


@pytest.mark.parametrize("answer, expected", [
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('好的，结果如下：{"a": [1, 2]} 希望有帮助', {"a": [1, 2]}),
    ('```\n[{"name": "id",},]\n```', [{"name": "id"}]),
    ('<think>{"draft": true}</think>{"final": true}', {"final": True}),
    ('推理过程……</think>{"final": 2}', {"final": 2}),
])
def test_json_answers_are_parsed_tolerantly(answer, expected):
    assert extract_json(answer) == expected
    with FakeLLMServer(lambda r: Reply(content=answer)) as server:
        assert client_for(server).chat_json(MESSAGES) == expected
        assert len(server.chat_requests()) == 1


def test_malformed_json_is_re_asked_once():
    with FakeLLMServer(scripted(Reply(content="抱歉，我不太明白"), Reply(content='{"ok": true}'))) as server:
        assert client_for(server).chat_json(MESSAGES) == {"ok": True}
        requests = server.chat_requests()
    assert len(requests) == 2
    re_ask = requests[1]["messages"]
    assert re_ask[:len(MESSAGES)] == MESSAGES
    assert re_ask[-2] == {"role": "assistant", "content": "抱歉，我不太明白"}
    assert "JSON" in re_ask[-1]["content"]


def test_answer_failing_validation_is_re_asked_with_the_reason():
    def validate(value):
        if "name" not in value:
            raise ValueError("缺少 name 字段")
        return value["name"]

    with FakeLLMServer(scripted(Reply(content='{"nom": "x"}'), Reply(content='{"name": "公司"}'))) as server:
        assert client_for(server).chat_json(MESSAGES, validate=validate) == "公司"
        assert "缺少 name 字段" in server.chat_requests()[1]["messages"][-1]["content"]


def test_two_malformed_answers_are_an_llm_error():
    with FakeLLMServer(lambda r: Reply(content="不是JSON")) as server:
        with pytest.raises(LLMError):
            client_for(server).chat_json(MESSAGES)
        assert len(server.chat_requests()) == 2


def test_concurrent_calls_are_bounded():
    responder = ConcurrencyProbe(lambda request: Reply(content="好"), hold=0.2)

    with FakeLLMServer(responder) as server:
        client = client_for(server, concurrency=2)
        threads = [threading.Thread(target=client.chat, args=(MESSAGES,)) for _ in range(6)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    assert responder.peak == 2
    assert elapsed >= 0.55    # 6 calls of 0.2 s, two at a time
    assert client.usage_summary()["calls"] == 6


def test_api_key_is_sent_but_never_in_errors_or_logs(caplog):
    secret = "sk-very-secret-key-123"
    with FakeLLMServer(lambda r: Reply(status=401)) as server:
        with caplog.at_level(logging.DEBUG):
            with pytest.raises(LLMError) as caught:
                client_for(server, api_key=secret).chat(MESSAGES)
        assert server.chat_requests()[0]["_authorization"] == f"Bearer {secret}"
    assert secret not in caught.value.details
    assert secret not in caplog.text


def test_from_settings():
    assert LLMClient.from_settings(Settings()) is None
    settings = Settings().with_overrides(llm_base_url="http://127.0.0.1:9/v1", llm_model="m", llm_max_retries=1)
    client = LLMClient.from_settings(settings)
    assert client.model == "m" and client.max_retries == 1


def test_strip_think_keeps_plain_answers():
    assert strip_think("  公司表  ") == "公司表"
    assert strip_think("<think>未完成的思考") == ""
