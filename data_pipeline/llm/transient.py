"""Which failures of an OpenAI-compatible endpoint (chat or embeddings) are worth another attempt."""
from __future__ import annotations

import openai

# Request timeout, conflict, rate limit: the same request may succeed later. Other 4xx will not.
_RETRYABLE_STATUSES = {408, 409, 429}


def is_transient(exc: BaseException) -> bool:
    """Timeouts, lost connections, 408/409/429 and 5xx, and answers of the wrong shape (a proxy's
    HTML page, a body that is no completion; raised by our code as ValueError)."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code >= 500 or exc.status_code in _RETRYABLE_STATUSES
    return isinstance(exc, (openai.OpenAIError, ValueError))
