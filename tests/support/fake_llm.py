"""A real OpenAI-compatible HTTP server for tests: the `openai` client and our code run unchanged.

Answers are scripted by a `responder(request) -> Reply` function, where `request` is the parsed
JSON body (with `messages` for chat) and the path. The server records every request so tests can
assert what was asked. Embeddings are answered with a deterministic vector per input text unless
the responder handles the path itself.

Like a real local model server it can also refuse `response_format` with HTTP 400
(`refuse_response_format`), answer HTTP 400 to a prompt longer than its context
(`context_size`, counted as one token per character), and cut an answer off at the request's
`max_tokens` (finish_reason "length"). `rambling(marker)` is a model that never stops on its own.

    with FakeLLMServer(lambda req: Reply(content='{"a": 1}')) as llm:
        settings = settings.with_overrides(llm_base_url=llm.base_url, llm_model="fake")
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    delay: float = 0.0
    raw_body: str | None = None      # sent as-is (garbage answers)
    hang: bool = False               # never answer (until the server stops)
    headers: dict[str, str] = field(default_factory=dict)   # extra response headers (Retry-After)
    finish_reason: str = "stop"


class ConcurrencyProbe:
    """A responder wrapper that holds every answer `hold` seconds and records how many requests
    were being answered at once (`peak`)."""

    def __init__(self, answer: Callable[[dict], Reply], hold: float):
        self.answer, self.hold = answer, hold
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict) -> Reply:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.hold)
        with self._lock:
            self.active -= 1
        return self.answer(request)


# A model without an end: this many tokens when the request sets no max_tokens.
RAMBLING_TOKENS_WITHOUT_LIMIT = 20_000
CONTEXT_EXCEEDED = "the request exceeds the available context size, try increasing it"
RESPONSE_FORMAT_REFUSED = "Unrecognized request argument supplied: response_format"


def chat_body(content: str, model: str = "fake-model", finish_reason: str = "stop",
              usage: tuple[int, int] = (10, 5)) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def prompt_tokens(request: dict) -> int:
    return sum(len(str(m.get("content") or "")) for m in request.get("messages") or [])


def rambling(marker: str, seconds_per_token: float = 0.0) -> Callable[[dict], Reply]:
    """A model that goes on until max_tokens stops it (or for 20,000 tokens without it), taking
    `seconds_per_token` for each (a real server's generation speed)."""
    def answer(request: dict) -> Reply:
        tokens = min(request.get("max_tokens") or RAMBLING_TOKENS_WITHOUT_LIMIT, RAMBLING_TOKENS_WITHOUT_LIMIT)
        text = (f"{marker}嗯，让我再想想。" * (tokens // 8 + 1))[:tokens]
        return Reply(content=text, delay=tokens * seconds_per_token,
                     finish_reason="length" if request.get("max_tokens") else "stop")
    return answer


def fake_embedding(text: str, dimensions: int = 16) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [(digest[i % len(digest)] - 128) / 128.0 for i in range(dimensions)]


class FakeLLMServer:
    def __init__(self, responder: Callable[[dict], Reply] | None = None, *, embedding_dimensions: int = 16,
                 context_size: int | None = None, refuse_response_format: bool = False):
        self.responder = responder or (lambda request: Reply(content="{}"))
        self.embedding_dimensions = embedding_dimensions
        self.context_size = context_size
        self.refuse_response_format = refuse_response_format
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return None

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                body["_path"] = self.path
                body["_authorization"] = self.headers.get("Authorization")
                with server._lock:
                    server.requests.append(body)
                if self.path.endswith("/embeddings") and not getattr(server.responder, "handles_embeddings", False):
                    self._send(200, json.dumps(server._embeddings(body)))
                    return
                refusal = server._refusal(body)
                if refusal is not None:
                    self._send(400, json.dumps({"error": {"message": refusal, "type": "invalid_request_error",
                                                          "code": 400}}))
                    return
                reply = server.responder(body)
                if reply.hang:
                    server._stopping.wait()
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw_body is not None:
                    self._send(reply.status, reply.raw_body, reply.headers)
                elif reply.status != 200:
                    self._send(reply.status, json.dumps({"error": {"message": "scripted failure",
                                                                   "type": "server_error"}}), reply.headers)
                else:
                    content = reply.content or ""
                    self._send(200, json.dumps(chat_body(content, body.get("model", "fake"), reply.finish_reason,
                                                         (prompt_tokens(body), len(content)))), reply.headers)

            def _send(self, status: int, text: str, headers: dict[str, str] | None = None):
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def chat_requests(self) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["_path"].endswith("/chat/completions")]

    def _refusal(self, body: dict) -> str | None:
        """Why a llama.cpp-like server would answer this chat request with HTTP 400, if it would."""
        if not body["_path"].endswith("/chat/completions"):
            return None
        if self.refuse_response_format and "response_format" in body:
            return RESPONSE_FORMAT_REFUSED
        if self.context_size is not None and prompt_tokens(body) > self.context_size:
            return CONTEXT_EXCEEDED
        return None

    def _embeddings(self, body: dict) -> dict:
        inputs = body.get("input") or []
        if isinstance(inputs, str):
            inputs = [inputs]
        dims = body.get("dimensions") or self.embedding_dimensions
        return {"object": "list", "model": body.get("model", "fake-embedding"),
                "data": [{"object": "embedding", "index": i, "embedding": fake_embedding(str(t), dims)}
                         for i, t in enumerate(inputs)],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}}

    def start(self) -> "FakeLLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
