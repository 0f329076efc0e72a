"""Embeddings and the pgvector store (Vanna-compatible): loading, backup, truncate, restore."""
