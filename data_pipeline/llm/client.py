"""The one module that talks to the LLM: any OpenAI-compatible chat endpoint through `openai`.

Timeouts, retries (the project's one policy, data_pipeline.retries: exponential backoff, Retry-After
honoured) on 429/5xx/timeouts/connection errors and malformed answers, a process-wide
bound on concurrent calls (LLM_CONCURRENCY), `<think>` blocks stripped, JSON answers parsed
tolerantly with one re-ask. Every failure is an `LLMError`; no error text is ever returned as an
answer, so nothing the LLM failed to say can end up in an output file.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any, Callable

import openai

from data_pipeline.errors import LLMError
from data_pipeline.llm.transient import is_transient
from data_pipeline.retries import retrying

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_UNCLOSED_THINK = re.compile(r"^\s*<think>.*", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_NOTHING = object()

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
    text = strip_think(text)
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)] + [text.strip()]
    for attempt in (candidates, [_TRAILING_COMMA.sub(r"\1", c) for c in candidates]):
        for candidate in attempt:
            value = _first_json_value(candidate)
            if value is not _NOTHING:
                return value
    raise ValueError("no JSON object or array found in the answer")


def _first_json_value(text: str) -> Any:
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char not in "[{":
            continue
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        return value
    return _NOTHING


class LLMClient:
    """A chat client for one OpenAI-compatible endpoint; safe to share between threads."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 3, concurrency: int = 4,
                 logger: logging.Logger | None = None, backoff_base: float = 1.0):
        self.model = model
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.logger = logger or logging.getLogger("LLMClient")
        self._semaphore = _shared_semaphore(concurrency)
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                     timeout=timeout, max_retries=0)
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._stats_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings, logger: logging.Logger | None = None) -> "LLMClient | None":
        """The configured client, or None when no LLM is configured (the offline generator runs)."""
        if not settings.llm_configured:
            return None
        return cls(base_url=settings.llm_base_url, model=settings.llm_model, api_key=settings.llm_api_key,
                   timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                   concurrency=settings.llm_concurrency, logger=logger)

    def chat(self, messages: list[dict], *, temperature: float = 0.2, max_tokens: int | None = None) -> str:
        """The answer text, without reasoning blocks. Raises LLMError when no usable answer comes."""
        policy = retrying(retry_on=is_transient, attempts=self.max_retries + 1, first_delay=self.backoff_base,
                          on_retry=self._log_retry)
        try:
            return policy(self._complete, messages, temperature, max_tokens)
        except (openai.OpenAIError, ValueError) as exc:
            if not is_transient(exc):
                raise LLMError(f"LLM请求被拒绝: {_describe(exc)}") from None
            raise LLMError(f"LLM调用失败（已重试{self.max_retries}次）: {_describe(exc)}") from None

    def _log_retry(self, retry: int, exc: BaseException, delay: float) -> None:
        self.logger.warning("LLM调用失败，%.1fs 后重试 (%d/%d): %s", delay, retry, self.max_retries, _describe(exc))

    def _complete(self, messages: list[dict], temperature: float, max_tokens: int | None) -> str:
        started = time.monotonic()
        with self._semaphore:
            response = self._client.chat.completions.create(
                model=self.model, messages=messages, temperature=temperature,
                **({"max_tokens": max_tokens} if max_tokens else {}))
        text = self._answer_text(response, time.monotonic() - started)
        if not text:
            raise _EmptyAnswer()
        return text

    def chat_json(self, messages: list[dict], *, validate: Callable[[Any], Any] | None = None,
                  temperature: float = 0.2) -> Any:
        """A JSON answer, re-asking once when the answer is not JSON or fails `validate`.

        `validate` receives the parsed value and returns the value to use; it raises ValueError
        (with a message the LLM can act on) when the answer is unusable.
        """
        answer = self.chat(messages, temperature=temperature)
        try:
            return _parse(answer, validate)
        except ValueError as exc:
            self.logger.warning("LLM回答不是有效的JSON，重新询问: %s", exc)
            retry_messages = messages + [
                {"role": "assistant", "content": answer},
                {"role": "user", "content": f"上面的回答无法使用（{exc}）。请只输出符合要求的JSON，不要任何解释。"},
            ]
            answer = self.chat(retry_messages, temperature=temperature)
            try:
                return _parse(answer, validate)
            except ValueError as second:
                raise LLMError(f"LLM两次回答都不是有效的JSON: {second}") from None

    def _answer_text(self, response, elapsed: float) -> str:
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None) or 0
        completion_tokens = getattr(usage, "completion_tokens", None) or 0
        with self._stats_lock:
            self.calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
        self.logger.info("LLM调用完成: %.2fs, token用量 prompt=%d completion=%d", elapsed, prompt_tokens,
                         completion_tokens)
        try:
            choices = getattr(response, "choices", None) or []
            if not choices or choices[0].message is None:
                return ""
            content = choices[0].message.content or ""
        except (AttributeError, TypeError, IndexError, KeyError):
            # The client builds response objects without checking them: any shape can arrive.
            raise ValueError("the answer is not a chat completion") from None
        if not isinstance(content, str):
            raise ValueError("the answer is not a chat completion")
        return strip_think(content)

    def usage_summary(self) -> dict:
        with self._stats_lock:
            return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens}


class _EmptyAnswer(ValueError):
    """The endpoint answered with no text: asked again like any malformed answer."""


def _parse(answer: str, validate: Callable[[Any], Any] | None) -> Any:
    value = extract_json(answer)
    return validate(value) if validate else value


def _describe(exc: BaseException) -> str:
    """A short error description without request bodies or headers (which may hold the key)."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    if isinstance(exc, _EmptyAnswer):
        return "LLM返回了空回答"
    if isinstance(exc, ValueError):
        return "无法解析的响应"
    return type(exc).__name__
