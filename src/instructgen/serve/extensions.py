"""How an application plugs into the server: its routes, its pages and its public paths.

    ext = Extension("notes", lambda: notes_router(), pages={"notes page": "/notes"},
                    public_paths=("/notes",))
    app = create_app("runs/quickstart/model", api_keys=["sk-local"], extensions=[ext])

The server names no application: the command line chooses which extensions to pass. This module
imports nothing but the standard library, so applications can describe themselves without
loading FastAPI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Extension"]


@dataclass(frozen=True)
class Extension:
    """An application mounted on the server.

    router() builds its fastapi.APIRouter; the server calls it once, when the app is built (after
    the model directory is checked), so an extension that opens files or databases does so only
    for a server that will run. pages maps what a page is ("customer-service") to its path; the
    server announces them when it starts. public_paths are reachable without the API key, as the
    chat page is (a page's own API calls send the key); every other route of the extension is
    behind the key.
    """

    name: str
    router: Callable[[], Any]
    pages: Mapping[str, str] = field(default_factory=dict)
    public_paths: Sequence[str] = ()
