"""The one module that talks to the LLM: any OpenAI-compatible chat endpoint through `openai`.

Timeouts, retries (the project's one policy, data_pipeline.retries: exponential backoff, Retry-After
honoured) on 429/5xx/timeouts/connection errors and malformed answers, a process-wide
bound on concurrent calls (LLM_CONCURRENCY), an output budget on every call, JSON mode where the
server accepts it, `<think>` blocks stripped, JSON answers parsed tolerantly with one short re-ask.
Every failure is an `LLMError`; no error text is ever returned as an answer, and a rejected answer
is never logged above DEBUG, so nothing the LLM failed to say can end up in an output.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NamedTuple

import openai

from data_pipeline.errors import LLMError
from data_pipeline.llm.transient import is_transient
from data_pipeline.retries import retrying

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_UNCLOSED_THINK = re.compile(r"^\s*<think>.*", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")

DEFAULT_MAX_OUTPUT_TOKENS = 4096
JSON_OBJECT = {"type": "json_object"}
# A re-ask adds at most this many characters to the first prompt: an excerpt of the rejected
# answer and the reason, never the whole answer (a long one would overflow a small context).
REASK_EXTRA_CHARS = 400
REASON_CHARS = 120
ELLIPSIS = "……"

# Calls in a row without an answer (after their retries) that mark the model as down for the step.
UNREACHABLE_STREAK = 3

# Servers (base URL, model) known in this process to refuse or accept response_format.
_JSON_MODE_REFUSED: set[tuple[str, str]] = set()
_JSON_MODE_ACCEPTED: set[tuple[str, str]] = set()

_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


def _shared_semaphore(limit: int) -> threading.BoundedSemaphore:
    """One bound per process and limit, shared by every client, so concurrent steps add up."""
    with _semaphores_lock:
        if limit not in _semaphores:
            _semaphores[limit] = threading.BoundedSemaphore(limit)
        return _semaphores[limit]


def strip_think(text: str) -> str:
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text.lower() and "<think>" not in text.lower():
        # Some servers drop the opening tag: everything up to the closing tag is reasoning.
        text = re.split(r"</think>", text, flags=re.IGNORECASE)[-1]
    # A reasoning model cut off mid-thought leaves an unclosed block: nothing usable follows it.
    return _UNCLOSED_THINK.sub("", text).strip()


def extract_json(text: str) -> Any:
    """The first JSON object or array in `text`: inside a code fence, or surrounded by prose.

    A second pass forgives trailing commas (`[1, 2,]`), a common slip of chat models.
    """
    for value in json_values(text):
        return value
    raise ValueError("no JSON object or array found in the answer")


def json_values(text: str) -> Iterator[Any]:
    """Every JSON object or array in `text`, the ones in code fences first: a model that wraps its
    answer in prose and code may show a snippet before the answer itself."""
    text = strip_think(text)
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)] + [text.strip()]
    for attempt in (candidates, [_TRAILING_COMMA.sub(r"\1", c) for c in candidates]):
        for candidate in attempt:
            yield from _json_values_in(candidate)


def _json_values_in(text: str) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    position = 0
    while position < len(text):
        starts = [i for i in (text.find("{", position), text.find("[", position)) if i >= 0]
        if not starts:
            return
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        yield value
        position = end


class LLMClient:
    """A chat client for one OpenAI-compatible endpoint; safe to share between threads.

    Every request carries `max_tokens`: the caller's budget for that kind of answer (budgets.py),
    capped by `max_output_tokens`. An answer cut off there (finish_reason "length") is malformed.
    A step may set a wall-clock budget (`step_budget`): past it every call fails at once with
    `LLMBudgetExceeded`, and the step falls back for the parts still to do.
    """

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 3, concurrency: int = 4,
                 logger: logging.Logger | None = None, backoff_base: float = 1.0,
                 max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS, reasoning_tokens: int = 0):
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_output_tokens = max_output_tokens
        # A model that thinks before it answers (`<think>`) spends these on top of every budget.
        self.reasoning_tokens = reasoning_tokens
        self.logger = logger or logging.getLogger("LLMClient")
        self._semaphore = _shared_semaphore(concurrency)
        self._server = (base_url.rstrip("/"), model)
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                     timeout=timeout, max_retries=0)
        self._deadline: float | None = None
        self._in_step = False
        self._unreachable_streak = 0
        self._stats = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0,
                       "answered": 0, "unreachable": 0, "refused": 0}
        self._stats_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings, logger: logging.Logger | None = None) -> "LLMClient | None":
        """The configured client, or None when no LLM is configured (the offline generator runs)."""
        if not settings.llm_configured:
            return None
        return cls(base_url=settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key,
                   timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                   concurrency=settings.llm_concurrency, logger=logger,
                   max_output_tokens=settings.llm_max_output_tokens,
                   reasoning_tokens=settings.llm_reasoning_tokens)

    @contextmanager
    def step_budget(self, seconds: float | None) -> Iterator[None]:
        """Model work inside the block ends after `seconds` of wall-clock time (None: no budget),
        or as soon as UNREACHABLE_STREAK calls in a row got no answer: the model is down, and the
        rest of the step falls back at once instead of waiting out timeouts call after call."""
        self._deadline = time.monotonic() + seconds if seconds else None
        self._in_step, self._unreachable_streak = True, 0
        try:
            yield
        finally:
            self._deadline, self._in_step, self._unreachable_streak = None, False, 0

    def chat(self, messages: list[dict], *, temperature: float = 0.2, max_tokens: int | None = None) -> str:
        """The answer text, without reasoning blocks. Raises LLMError when no usable answer comes,
        an answer cut off at the budget included."""
        answer = self._answer(messages, temperature, self._budget(max_tokens), json_mode=False)
        if answer.truncated:
            raise LLMError("LLM的回答超出输出预算被截断")
        return answer.text

    def chat_json(self, messages: list[dict], *, validate: Callable[[Any], Any] | None = None,
                  temperature: float = 0.2, max_tokens: int | None = None) -> Any:
        """A JSON answer, re-asking once when the answer is cut off, not JSON, or fails `validate`.

        `validate` receives the parsed value and returns the value to use; it raises ValueError
        (with a message the LLM can act on) when the answer is unusable. The re-ask quotes only an
        excerpt of the rejected answer, so it is at most REASK_EXTRA_CHARS longer than the first.
        """
        budget = self._budget(max_tokens)
        answer = self._answer(messages, temperature, budget, json_mode=True)
        try:
            return _parse(answer, validate)
        except ValueError as exc:
            self.logger.warning("LLM回答无法使用（%s），重新询问", _kind(answer, exc))
            self.logger.debug("LLM回答无法使用的原因: %s", exc)
            answer = self._answer(reask_messages(messages, answer, str(exc)), temperature, budget, json_mode=True)
            try:
                return _parse(answer, validate)
            except ValueError as second:
                self.logger.debug("LLM第二次回答无法使用的原因: %s", second)
                raise LLMError(f"LLM两次回答都无法使用（{_kind(answer, second)}）") from None

    def usage_summary(self) -> dict:
        """Calls made and tokens used, and how the calls ended: with an answer, unreachable, refused."""
        with self._stats_lock:
            return dict(self._stats)

    def unavailable_reason(self, since: dict) -> str | None:
        """Why the model could not be used since the `usage_summary()` snapshot `since`: None when
        it answered at least once (or was not asked), else which of unreachable / refused."""
        now = self.usage_summary()
        answered, unreachable, refused = (now[k] - since.get(k, 0) for k in ("answered", "unreachable", "refused"))
        if answered or not (unreachable or refused):
            return None
        if refused and not unreachable:
            return f"LLM服务拒绝了全部{refused}次请求（HTTP 4xx），请检查模型名称、上下文长度和接口参数"
        return f"LLM服务无法连接（{unreachable + refused}次请求均未得到回答），请检查 LLM_BASE_URL 和模型服务"

    def _budget(self, max_tokens: int | None) -> int:
        wanted = max_tokens + self.reasoning_tokens if max_tokens else self.max_output_tokens
        return max(1, min(wanted, self.max_output_tokens))

    def _answer(self, messages: list[dict], temperature: float, max_tokens: int, *, json_mode: bool) -> "_Answer":
        with self._stats_lock:
            down = self._in_step and self._unreachable_streak >= UNREACHABLE_STREAK
        if down:
            self._count("unreachable")
            raise LLMError(f"LLM服务连续{UNREACHABLE_STREAK}次调用无法连接，本步骤不再调用")
        remaining = self._remaining()
        policy = retrying(retry_on=is_transient, attempts=self.max_retries + 1, first_delay=self.backoff_base,
                          within_seconds=remaining, on_retry=self._log_retry)
        try:
            answer = policy(self._complete, messages, temperature, max_tokens, json_mode)
        except (openai.OpenAIError, ValueError) as exc:
            refused = isinstance(exc, openai.APIStatusError) and not is_transient(exc)
            # An empty answer is an answer: the model is there, only useless (the caller falls back).
            self._count("refused" if refused else "answered" if isinstance(exc, _EmptyAnswer) else "unreachable")
            if refused:
                raise LLMError(f"LLM请求被拒绝: {_describe(exc)}") from None
            raise LLMError(f"LLM调用失败（已重试{self.max_retries}次）: {_describe(exc)}") from None
        self._count("answered")
        return answer

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise LLMBudgetExceeded("本步骤的LLM时间预算（LLM_STEP_TIMEOUT）已用完")
        return remaining

    def _log_retry(self, retry: int, exc: BaseException, delay: float) -> None:
        self.logger.warning("LLM调用失败，%.1fs 后重试 (%d/%d): %s", delay, retry, self.max_retries, _describe(exc))

    def _complete(self, messages: list[dict], temperature: float, max_tokens: int, json_mode: bool) -> "_Answer":
        remaining = self._remaining()
        options = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens,
                   "timeout": min(self.timeout, remaining) if remaining else self.timeout}
        started = time.monotonic()
        with self._semaphore:
            if json_mode and self._server not in _JSON_MODE_REFUSED:
                response = self._create_in_json_mode(options)
            else:
                response = self._client.chat.completions.create(**options)
        answer = self._read(response, time.monotonic() - started)
        if not answer.text and not answer.truncated:
            raise _EmptyAnswer()
        return answer

    def _create_in_json_mode(self, options: dict):
        """Ask for a JSON object; a server that refuses the parameter (a 400 naming it, or any 400
        before it ever accepted it) is asked again at once without it, and never again with it."""
        try:
            response = self._client.chat.completions.create(**options, response_format=JSON_OBJECT)
        except openai.BadRequestError as exc:
            if "response_format" not in str(exc) and self._server in _JSON_MODE_ACCEPTED:
                raise
            response = self._client.chat.completions.create(**options)
            _JSON_MODE_REFUSED.add(self._server)
            self.logger.info("LLM服务不接受 response_format（%s），此后的请求不再使用JSON模式", _describe(exc))
            return response
        _JSON_MODE_ACCEPTED.add(self._server)
        return response

    def _read(self, response, elapsed: float) -> "_Answer":
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None) or 0
        completion_tokens = getattr(usage, "completion_tokens", None) or 0
        with self._stats_lock:
            self._stats["calls"] += 1
            self._stats["prompt_tokens"] += prompt_tokens
            self._stats["completion_tokens"] += completion_tokens
        self.logger.info("LLM调用完成: %.2fs, token用量 prompt=%d completion=%d", elapsed, prompt_tokens,
                         completion_tokens)
        try:
            choices = getattr(response, "choices", None) or []
            if not choices or choices[0].message is None:
                return _Answer("", False)
            content = choices[0].message.content or ""
            truncated = getattr(choices[0], "finish_reason", None) == "length"
        except (AttributeError, TypeError, IndexError, KeyError):
            # The client builds response objects without checking them: any shape can arrive.
            raise ValueError("the answer is not a chat completion") from None
        if not isinstance(content, str):
            raise ValueError("the answer is not a chat completion")
        return _Answer(strip_think(content), truncated)

    def _count(self, outcome: str) -> None:
        with self._stats_lock:
            self._stats[outcome] += 1
            self._unreachable_streak = self._unreachable_streak + 1 if outcome == "unreachable" else 0


class LLMBudgetExceeded(LLMError):
    """The step's wall-clock budget for model work is spent: the rest of the step falls back."""


class _Answer(NamedTuple):
    text: str
    truncated: bool   # cut off at max_tokens: never usable, whatever it looks like


def reask_messages(messages: list[dict], answer: "_Answer", reason: str) -> list[dict]:
    """The first messages, then an excerpt of the rejected answer and why it was rejected: at most
    REASK_EXTRA_CHARS characters more than the first prompt, however long the answer was."""
    cause = "回答过长，在输出上限处被截断" if answer.truncated else reason
    note = f"上面的回答无法使用（{cause[:REASON_CHARS]}）。请只输出符合要求的、简洁完整的JSON，不要任何解释。"
    excerpt = answer.text[:REASK_EXTRA_CHARS - len(note) - len(ELLIPSIS)]
    if len(excerpt) < len(answer.text):
        excerpt += ELLIPSIS
    return messages + [{"role": "assistant", "content": excerpt}, {"role": "user", "content": note}]


class _EmptyAnswer(ValueError):
    """The endpoint answered with no text: asked again like any malformed answer."""


def _parse(answer: _Answer, validate: Callable[[Any], Any] | None) -> Any:
    """The first JSON value in the answer that `validate` accepts; the first refusal otherwise."""
    if answer.truncated:
        raise ValueError("回答在输出上限处被截断")
    first_error = None
    for value in json_values(answer.text):
        if validate is None:
            return value
        try:
            return validate(value)
        except ValueError as exc:
            first_error = first_error or exc
    raise first_error or _NoJSON("回答中没有JSON对象或数组")


class _NoJSON(ValueError):
    """No JSON object or array anywhere in the answer."""


def _kind(answer: _Answer, refusal: ValueError) -> str:
    """Why an answer was unusable (from `_parse`'s refusal), in words that quote nothing of it
    (log lines at WARNING)."""
    if answer.truncated:
        return "回答超出输出预算被截断"
    return "回答中没有JSON" if isinstance(refusal, _NoJSON) else "JSON内容不符合要求"


def _describe(exc: BaseException) -> str:
    """A short error description without request bodies or headers (which may hold the key)."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, _EmptyAnswer):
        return "LLM返回了空回答"
    if isinstance(exc, ValueError):
        return "无法解析的响应"
    return type(exc).__name__
