"""The AutoVoice HTTP + WebSocket service: :func:`create_app` and :func:`serve`.

Imported lazily: the CLI registers the service's commands without loading FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autovoice.service.app import create_app, serve

__all__ = ["create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from autovoice.service import app

        return getattr(app, name)
    raise AttributeError(name)
