"""The OpenAI-compatible server: continuous batching, Prometheus metrics and a web chat page.

    instructgen serve --model runs/quickstart/model          # or: python -m instructgen.serve
    from instructgen.serve import create_app, run

Names load on first use, so `from instructgen.serve.options import add_arguments` (what the CLI
does to build its parser) imports neither FastAPI nor torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Scheduler", "create_app", "error_response", "run"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "error_response", "run"):
        from instructgen.serve import app

        return getattr(app, name)
    if name == "Scheduler":
        from instructgen.serve.scheduler import Scheduler

        return Scheduler
    raise AttributeError(f"module 'instructgen.serve' has no attribute {name!r}")
