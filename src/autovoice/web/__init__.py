"""The AutoVoice web page: static HTML, CSS and ES modules served at ``/`` by the service.

No build step: the files under ``static/`` are what the browser loads. The page talks to the server
only through the public HTTP API (``/api/v1``), so it works the same against an embedded or a
distributed deployment. The service mounts it with::

    app.mount("/", StaticFiles(directory=static_dir(), html=True), name="web")

after the API routes, so ``/api/...``, ``/health`` and ``/docs`` keep priority.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["static_dir"]


def static_dir() -> Path:
    """The folder holding ``index.html``, ``style.css`` and ``js/`` (read-only package data)."""
    return Path(__file__).resolve().parent / "static"
