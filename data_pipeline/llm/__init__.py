"""The LLM client: an OpenAI-compatible chat endpoint with timeouts, retries and tolerant JSON parsing."""
