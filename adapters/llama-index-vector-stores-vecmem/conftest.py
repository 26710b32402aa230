"""Keep pytest from importing the package's source as test modules: under ``--doctest-modules``
pytest would name ``llama_index/vector_stores/vecmem/filters.py`` ``vecmem.filters`` and shadow
vecmem itself. The tests live in ``tests/``."""

collect_ignore = ["llama_index"]
