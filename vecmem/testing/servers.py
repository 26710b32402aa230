"""Moved to :mod:`vecmem.testing._infra.servers` (test infrastructure, apart from the
public suites); this name stays an alias of that module: imports and monkeypatching work."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("vecmem.testing._infra.servers")
