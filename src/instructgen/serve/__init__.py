"""The OpenAI-compatible server: continuous batching, Prometheus metrics and a web chat page.

instructgen serve --model runs/quickstart/model          # or: python -m instructgen.serve
from instructgen.serve import create_app, run
"""

from instructgen.serve.app import create_app, error_response, run
from instructgen.serve.scheduler import Scheduler

__all__ = ["Scheduler", "create_app", "error_response", "run"]
