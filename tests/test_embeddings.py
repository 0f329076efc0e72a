"""Embedding providers: the offline hash provider and the OpenAI-compatible one (against the fake
OpenAI-compatible HTTP server)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from config import PROJECT_ROOT, Settings
from data_pipeline.errors import VectorStoreError
from data_pipeline.vector.embeddings import (HASH_DIMENSION, HashEmbeddings, OpenAIEmbeddings,
                                             embeddings_from_settings)
from tests.support.fake_llm import FakeLLMServer, Reply, fake_embedding


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_hash_vectors_have_fixed_dimension_and_unit_length():
    embeddings = HashEmbeddings()
    vectors = embeddings.embed_documents(["统计各服务区的营收", "count orders by day", "x", ""])
    assert isinstance(embeddings, Embeddings)
    assert [len(v) for v in vectors] == [HASH_DIMENSION] * 4
    assert np.allclose(np.linalg.norm(np.array(vectors), axis=1), 1.0, atol=1e-6)
    assert embeddings.model_name == f"hash-ngram-{HASH_DIMENSION}"


def test_hash_is_deterministic_across_processes():
    """No salted `hash()`: another interpreter computes the same vector."""
    text = "查询2023年4月1日各服务区的总营收 SELECT sum(pay_sum) FROM bss_business_day_data"
    script = ("import json; from data_pipeline.vector.embeddings import HashEmbeddings; "
              f"print(json.dumps(HashEmbeddings().embed_query({text!r})))")
    completed = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                               text=True, timeout=60, check=True)
    assert np.allclose(json.loads(completed.stdout), HashEmbeddings().embed_query(text), atol=1e-7)


def test_hash_is_lexical_for_chinese_and_english():
    embeddings = HashEmbeddings()
    query, related, unrelated = embeddings.embed_documents(
        ["各服务区的日营收", "统计各服务区每日的营收总额", "查询所有公司的编码"])
    assert cosine(query, related) > cosine(query, unrelated) + 0.2
    query, related, unrelated = embeddings.embed_documents(
        ["total revenue per service area", "sum of revenue for each service area", "list company codes"])
    assert cosine(query, related) > cosine(query, unrelated) + 0.2


def test_hash_query_and_document_agree_and_batches_are_counted():
    embeddings = HashEmbeddings(batch_size=3)
    texts = [f"问题 {i} 的文本" for i in range(7)]
    matrix = embeddings.embed_array(texts)
    assert embeddings.calls == 3  # batches of 3, 3, 1
    assert np.allclose(matrix[5], embeddings.embed_query(texts[5]), atol=1e-6)
    assert embeddings.calls == 4


def test_openai_provider_batches_and_sends_the_key():
    with FakeLLMServer(embedding_dimensions=24) as server:
        settings = Settings().with_overrides(
            embedding_provider="openai", embedding_base_url=server.base_url, embedding_model="emb-test",
            embedding_api_key="sk-embed-secret", embedding_batch_size=4)
        embeddings = embeddings_from_settings(settings)
        texts = [f"text {i}" for i in range(10)]
        vectors = embeddings.embed_documents(texts)
        requests = [r for r in server.requests if r["_path"].endswith("/embeddings")]
    assert isinstance(embeddings, OpenAIEmbeddings)
    assert [len(r["input"]) for r in requests] == [4, 4, 2]
    assert all(r["model"] == "emb-test" and r["_authorization"] == "Bearer sk-embed-secret" for r in requests)
    assert np.allclose(vectors[7], fake_embedding("text 7", 24), atol=1e-6)
    assert embeddings.dimension == 24  # probes once: the endpoint decides
    assert embeddings.calls == 4


def test_openai_provider_passes_configured_dimensions():
    with FakeLLMServer() as server:
        embeddings = OpenAIEmbeddings(base_url=server.base_url, model="m", dimensions=8)
        assert embeddings.dimension == 8
        assert len(embeddings.embed_query("abc")) == 8
        assert server.requests[-1]["dimensions"] == 8


class FlakyEmbeddings:
    """Answers 503 `failures` times, then real vectors."""
    handles_embeddings = True

    def __init__(self, failures: int, status: int = 503):
        self.failures = failures
        self.status = status

    def __call__(self, request):
        if self.failures > 0:
            self.failures -= 1
            return Reply(status=self.status)
        vectors = [{"object": "embedding", "index": i, "embedding": fake_embedding(t, 6)}
                   for i, t in enumerate(request["input"])]
        return Reply(raw_body=json.dumps({"object": "list", "data": vectors, "model": "m",
                                          "usage": {"prompt_tokens": 1, "total_tokens": 1}}))


def test_openai_provider_retries_server_errors():
    responder = FlakyEmbeddings(failures=2)
    with FakeLLMServer(responder) as server:
        embeddings = OpenAIEmbeddings(base_url=server.base_url, model="m", max_retries=3, backoff_base=0.01)
        vectors = embeddings.embed_documents(["a", "b"])
        assert len(server.requests) == 3
    assert np.allclose(vectors[1], fake_embedding("b", 6), atol=1e-6)


def test_openai_provider_gives_up_with_a_clear_error():
    with FakeLLMServer(FlakyEmbeddings(failures=10)) as server:
        embeddings = OpenAIEmbeddings(base_url=server.base_url, model="m", api_key="sk-secret-key",
                                      max_retries=2, backoff_base=0.01)
        with pytest.raises(VectorStoreError) as caught:
            embeddings.embed_documents(["a"])
        assert len(server.requests) == 3
    assert caught.value.error_code == "EMBEDDING_ERROR"
    assert "sk-secret-key" not in caught.value.details


def test_openai_provider_does_not_retry_a_rejected_request():
    with FakeLLMServer(FlakyEmbeddings(failures=5, status=400)) as server:
        embeddings = OpenAIEmbeddings(base_url=server.base_url, model="m", max_retries=3, backoff_base=0.01)
        with pytest.raises(VectorStoreError, match="400"):
            embeddings.embed_query("a")
        assert len(server.requests) == 1


def test_settings_choose_the_provider():
    assert isinstance(embeddings_from_settings(Settings()), HashEmbeddings)
    with pytest.raises(Exception, match="EMBEDDING_BASE_URL"):
        Settings().with_overrides(embedding_provider="openai")
