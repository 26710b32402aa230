"""The examples in vecmem's docstrings run as written (a changed API breaks its example here,
not in a reader's notebook). Examples marked ``+SKIP`` need a server, a key or a model."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import vecmem

MODULES = sorted(m.name for m in pkgutil.walk_packages(vecmem.__path__, "vecmem."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example that writes files writes them here
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0, f"{name}: a docstring example failed"
