"""instructgen's web pages: one self-contained HTML file each, sharing one stylesheet.

A page's <style> holds the line `/* PAGE_CSS */`; `page(package, name)` returns the page with
static/page.css of this package inlined there, so every page looks the same and still loads
nothing but itself.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["page"]

MARKER = "/* PAGE_CSS */"


def page(package: str, name: str) -> str:
    """The HTML of `package`'s static/`name`, with the shared stylesheet inlined."""
    html = resources.files(package).joinpath("static", name).read_text("utf-8")
    css = resources.files("instructgen").joinpath("static", "page.css").read_text("utf-8")
    if MARKER not in html:
        raise ValueError(f"{package}/static/{name} has no {MARKER} line in its <style>")
    return html.replace(MARKER, css.strip("\n"), 1)
