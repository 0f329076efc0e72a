"""A fake LLM (and embedding) server whose answers a test can hold back, to freeze a real step at a
known point: the step's executor waits for an answer while the test kills it, stops its database
or fills its disk.

    with GatedLLM() as llm:
        llm.hold(after=2)          # let two more requests through, hold the ones after
        ... start the step; llm.wait_held() ...
        llm.release()

Chat requests are answered with `chat_answer` (default "{}", which every step treats as an
unusable answer), embedding requests with deterministic vectors.
"""
from __future__ import annotations

import json
import threading

from tests.support.fake_llm import FakeLLMServer, Reply, fake_embedding

EMBEDDING_DIMENSIONS = 16
HOLD_SECONDS = 120


class GatedLLM:
    handles_embeddings = True

    def __init__(self):
        self.chat_answer = "{}"
        self._open = threading.Event()
        self._open.set()
        self._held = threading.Event()
        self._lock = threading.Lock()
        self._passes: int | None = None
        self.server = FakeLLMServer(self, embedding_dimensions=EMBEDDING_DIMENSIONS)
        # An answer held for a client that was killed meanwhile meets a closed socket: not news.
        self.server._httpd.handle_error = lambda request, client_address: None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def hold(self, after: int = 0) -> None:
        with self._lock:
            self._passes = after
            self._held.clear()
            self._open.clear()

    def wait_held(self, timeout: float = 60) -> None:
        if not self._held.wait(timeout):
            raise AssertionError("no LLM request arrived to be held")

    def release(self) -> None:
        with self._lock:
            self._passes = None
        self._open.set()

    def __call__(self, request: dict) -> Reply:
        with self._lock:
            passing = self._passes is None or self._passes > 0
            if self._passes is not None and self._passes > 0:
                self._passes -= 1
        if not passing:
            self._held.set()
            self._open.wait(HOLD_SECONDS)
        if request["_path"].endswith("/embeddings"):
            inputs = request.get("input") or []
            inputs = [inputs] if isinstance(inputs, str) else inputs
            dims = request.get("dimensions") or EMBEDDING_DIMENSIONS
            return Reply(raw_body=json.dumps({
                "object": "list", "model": request.get("model", "fake-embedding"),
                "data": [{"object": "embedding", "index": i, "embedding": fake_embedding(str(t), dims)}
                         for i, t in enumerate(inputs)],
                "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}}))
        return Reply(content=self.chat_answer)

    def __enter__(self) -> "GatedLLM":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.server.stop()


def llm_env(llm_base_url: str, llm_key: str, embedding_key: str, **extra: str) -> dict[str, str]:
    """Server settings that send every LLM and embedding call to the fake server."""
    return {
        "LLM_BASE_URL": llm_base_url, "LLM_MODEL": "fake-model", "LLM_API_KEY": llm_key,
        "EMBEDDING_PROVIDER": "openai", "EMBEDDING_BASE_URL": llm_base_url, "EMBEDDING_MODEL": "fake-embedding",
        "EMBEDDING_API_KEY": embedding_key, "EMBEDDING_BATCH_SIZE": "4",
        **extra,
    }
