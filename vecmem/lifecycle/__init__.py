"""Data lifecycle: export / import a store as a portable archive, migrate between stores.

>>> from vecmem.lifecycle import export_store, import_store, migrate   # doctest: +SKIP
>>> export_store("./kb", "kb.vmar")                                    # doctest: +SKIP
>>> import_store("kb.vmar", "lancedb:///tmp/lance")                    # doctest: +SKIP
>>> migrate("./kb", "postgresql://localhost/db?collection=kb")          # doctest: +SKIP
"""

from vecmem.lifecycle.archive import (
    ArchiveReport,
    export_store,
    import_store,
    verify_archive,
)
from vecmem.lifecycle.migration import MigrateReport, migrate

__all__ = [
    "ArchiveReport",
    "MigrateReport",
    "export_store",
    "import_store",
    "migrate",
    "verify_archive",
]
