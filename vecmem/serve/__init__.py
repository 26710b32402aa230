"""``vecmem serve``: the library over HTTP (FastAPI), MCP (streamable HTTP and stdio) and a web
page, scoped by API key to tenants. See :mod:`vecmem.serve.app` and :mod:`vecmem.serve.service`.

>>> from vecmem.serve import create_app, Service                    # doctest: +SKIP
"""

from __future__ import annotations

from vecmem.serve.service import Service, TenantView

__all__ = ["Service", "TenantView", "create_app"]


def __getattr__(name: str):  # FastAPI loads on first use
    if name == "create_app":
        from vecmem.serve.app import create_app

        return create_app
    raise AttributeError(name)
