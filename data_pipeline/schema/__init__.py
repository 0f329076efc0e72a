"""Schema introspection and DDL/MD rendering, shared by step 1 (ddl_generation) and the database tools: table names, identifiers, catalog reads, sampling, comments."""
