"""Keep pytest from importing the package's source as test modules (under ``--doctest-modules``
``langgraph/checkpoint/vecmem`` would be collected as a top-level ``langgraph`` and shadow
LangGraph itself). The tests live in ``tests/``."""

collect_ignore = ["langgraph"]
