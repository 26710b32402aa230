"""Test infrastructure, kept apart from the public suites: real database servers started for a
test session (:mod:`~vecmem.testing._infra.servers`: PostgreSQL + pgvector, MariaDB, Redis,
Chroma) and the local stand-in of Pinecone's HTTP API
(:mod:`~vecmem.testing._infra.pinecone_standin`). vecmem's own conftest, tests and benchmarks use
them; their interface may change between releases. ``vecmem.testing.servers`` and
``vecmem.testing.pinecone_standin`` remain importable as aliases of these modules."""
