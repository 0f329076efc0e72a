"""The LLM client against a real OpenAI-compatible HTTP server (tests/support/fake_llm.py)."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from config import Settings
from data_pipeline.errors import LLMError
from data_pipeline.llm.client import REASK_EXTRA_CHARS, LLMBudgetExceeded, LLMClient, extract_json, strip_think
from tests.support.fake_llm import ConcurrencyProbe, FakeLLMServer, Reply, rambling

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
    assert client.usage_summary() == {"calls": 1, "prompt_tokens": 2, "completion_tokens": 34,
                                      "answered": 1, "unreachable": 0, "refused": 0}
    assert "prompt=2 completion=34" in caplog.text
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


# ---- budgets, JSON mode, re-asks (issue 17) -------------------------------------------------

def needs_name(value):
    if not isinstance(value, dict) or "name" not in value:
        raise ValueError("缺少 name 字段")
    return value["name"]


def test_every_request_carries_a_budget_capped_by_the_setting():
    with FakeLLMServer(lambda r: Reply(content='{"name": "好"}')) as server:
        client = client_for(server, max_output_tokens=500)
        client.chat(MESSAGES)
        client.chat_json(MESSAGES, max_tokens=200)
        client.chat_json(MESSAGES, max_tokens=10_000)
        assert [r["max_tokens"] for r in server.chat_requests()] == [500, 200, 500]
    settings = Settings().with_overrides(llm_base_url="http://127.0.0.1:9/v1", llm_model="m",
                                         llm_max_output_tokens=321, llm_reasoning_tokens=50)
    assert LLMClient.from_settings(settings).max_output_tokens == 321


def test_a_thinking_model_gets_its_reasoning_allowance_on_top_of_every_budget():
    with FakeLLMServer(lambda r: Reply(content='<think>先想想</think>{"name": "好"}')) as server:
        client = client_for(server, max_output_tokens=1000, reasoning_tokens=600)
        assert client.chat_json(MESSAGES, validate=needs_name, max_tokens=200) == "好"
        client.chat_json(MESSAGES, validate=needs_name, max_tokens=700)
        assert [r["max_tokens"] for r in server.chat_requests()] == [800, 1000]
    settings = Settings.from_env({"LLM_BASE_URL": "http://127.0.0.1:9/v1", "LLM_MODEL": "m",
                                  "LLM_REASONING_TOKENS": "2000"}, dotenv_path=Path("/nonexistent"))
    assert LLMClient.from_settings(settings).reasoning_tokens == 2000


def test_an_answer_cut_off_at_the_budget_is_malformed_and_the_re_ask_quotes_only_an_excerpt():
    marker = "RAMBLE-7f3"
    with FakeLLMServer(rambling(marker)) as server:
        with pytest.raises(LLMError, match="截断"):
            client_for(server, max_output_tokens=3000).chat_json(MESSAGES, validate=needs_name)
        first, again = server.chat_requests()
    assert first["max_tokens"] == again["max_tokens"] == 3000
    length = lambda request: sum(len(m["content"]) for m in request["messages"])   # noqa: E731
    assert length(again) <= length(first) + REASK_EXTRA_CHARS
    assert marker in again["messages"][-2]["content"], "the excerpt shows the model what went wrong"
    with FakeLLMServer(rambling(marker)) as server:
        with pytest.raises(LLMError, match="截断"):
            client_for(server).chat(MESSAGES, max_tokens=50)


def test_a_truncated_answer_is_asked_again_once_and_a_complete_one_is_used():
    with FakeLLMServer(scripted(Reply(content='{"name": "很长很长', finish_reason="length"),
                                Reply(content='{"name": "公司"}'))) as server:
        assert client_for(server).chat_json(MESSAGES, validate=needs_name) == "公司"
        assert len(server.chat_requests()) == 2


def test_prose_and_code_around_the_json_find_the_answer():
    answer = ('好的！先看一段示例代码：\n```python\nrow = {"nom": 1}\nprint(row)\n```\n'
              '最终答案如下：\n```json\n{"name": "公司"}\n```\n希望对你有帮助。')
    with FakeLLMServer(lambda r: Reply(content=answer)) as server:
        assert client_for(server).chat_json(MESSAGES, validate=needs_name) == "公司"
        assert len(server.chat_requests()) == 1


def test_json_mode_is_asked_for_and_dropped_for_good_when_the_server_refuses_it(caplog):
    with FakeLLMServer(lambda r: Reply(content='{"name": "公司"}'), refuse_response_format=True) as server:
        client = client_for(server)
        with caplog.at_level(logging.INFO, logger="LLMClient"):
            assert client.chat_json(MESSAGES, validate=needs_name) == "公司"
        again = client_for(server)   # a new client in the same process remembers
        assert again.chat_json(MESSAGES, validate=needs_name) == "公司"
        requests = server.chat_requests()
    assert requests[0]["response_format"] == {"type": "json_object"}
    assert [("response_format" in r) for r in requests] == [True, False, False]
    assert "response_format" in caplog.text


def test_any_400_on_the_first_json_call_drops_json_mode_but_a_later_400_does_not():
    def responder(request):
        if "response_format" in request and len(responder.seen) == 0:
            responder.seen.append(request)
            return Reply(status=400)     # says nothing about the parameter
        return Reply(content='{"name": "公司"}')
    responder.seen = []
    with FakeLLMServer(responder) as server:
        assert client_for(server).chat_json(MESSAGES, validate=needs_name) == "公司"
        assert [("response_format" in r) for r in server.chat_requests()] == [True, False]

    with FakeLLMServer(scripted(Reply(content='{"name": "公司"}'), Reply(status=400))) as server:
        client = client_for(server)
        client.chat_json(MESSAGES, validate=needs_name)   # accepted: the server knows the parameter
        with pytest.raises(LLMError, match="HTTP 400"):
            client.chat_json(MESSAGES, validate=needs_name)
        assert [("response_format" in r) for r in server.chat_requests()] == [True, True]


def test_a_prompt_beyond_the_context_is_refused_and_the_client_says_so():
    with FakeLLMServer(lambda r: Reply(content='{"name": "公司"}'), context_size=50) as server:
        client = client_for(server)
        before = client.usage_summary()
        with pytest.raises(LLMError, match="HTTP 400"):
            client.chat_json([{"role": "user", "content": "长" * 80}], validate=needs_name)
        assert "拒绝" in client.unavailable_reason(before)
        assert client.chat_json(MESSAGES, validate=needs_name) == "公司"
        assert client.unavailable_reason(before) is None, "it answered once: not unavailable"


def test_an_unreachable_server_is_named_as_such():
    with FakeLLMServer(lambda r: Reply(status=503)) as server:
        client = client_for(server, max_retries=0)
        before = client.usage_summary()
        with pytest.raises(LLMError):
            client.chat_json(MESSAGES)
    assert "无法连接" in client.unavailable_reason(before)


def test_the_step_budget_ends_model_work_at_once():
    with FakeLLMServer(lambda r: Reply(content='{"name": "公司"}', delay=1.0)) as server:
        client = client_for(server, timeout=30.0, max_retries=3)
        started = time.monotonic()
        with client.step_budget(0.3):
            with pytest.raises(LLMError):
                client.chat_json(MESSAGES, validate=needs_name)
            with pytest.raises(LLMBudgetExceeded):
                client.chat_json(MESSAGES, validate=needs_name)
        assert time.monotonic() - started < 0.9
        assert client.chat_json(MESSAGES, validate=needs_name) == "公司", "outside the block: no budget"


def test_a_model_that_answers_nothing_is_there_but_useless():
    with FakeLLMServer(lambda r: Reply(content="<think>想了很久</think>")) as server:
        client = client_for(server, max_retries=1)
        before = client.usage_summary()
        with pytest.raises(LLMError):
            client.chat_json(MESSAGES)
    assert client.unavailable_reason(before) is None


def test_a_model_that_is_down_is_given_up_on_for_the_rest_of_the_step():
    with FakeLLMServer(lambda r: Reply(status=503)) as server:
        client = client_for(server, max_retries=0)
        before = client.usage_summary()
        with client.step_budget(60):
            for _ in range(5):
                with pytest.raises(LLMError):
                    client.chat_json(MESSAGES)
            assert len(server.chat_requests()) == 3, "after three calls without an answer, no more requests"
            assert "无法连接" in client.unavailable_reason(before)
        with pytest.raises(LLMError):
            client.chat_json(MESSAGES)   # the next step asks again
        assert len(server.chat_requests()) == 4
