"""Database connections: business-database URLs and connections, the store URL, the embedded PostgreSQL and its demo database."""
