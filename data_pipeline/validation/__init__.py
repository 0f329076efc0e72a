"""SQL validation: the statement check, EXPLAIN on pooled connections, LLM repair, the pair file and the reports."""
