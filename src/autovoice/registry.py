"""Named choices (engines, F0 methods, separation backends), each with a description and option schema.

A :class:`Registry` maps a name to a :class:`Choice` whose implementation (``"module:attr"``) is imported
only when it is used, so listing choices stays cheap. The CLI's help, the API schema, ``GET
/api/v1/engines`` and the web page all read the choices from the registries; an unknown name gets
:func:`autovoice.errors.unknown_choice`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from autovoice.errors import unknown_choice


@dataclass(frozen=True)
class Choice:
    """One named implementation.

    Attributes
    ----------
    name
        The name users type (``world``, ``fcpe``, ``spleeter``).
    description
        One sentence for help texts and the web page.
    target
        ``"module:attr"`` of the implementation, imported on :meth:`load`; empty for choices with no
        implementation of their own (``none``, ``auto``).
    options
        ``"module:Class"`` of a pydantic model of the choice's own options, or empty when it has none.
    """

    name: str
    description: str
    target: str = ""
    options: str = ""

    def load(self) -> Any:
        """The implementation (imports its module)."""
        return _import(self.target)

    def options_model(self) -> Any:
        """The pydantic model class of this choice's options, or ``None``."""
        return _import(self.options) if self.options else None

    def describe(self) -> dict[str, Any]:
        """``{"name", "description", "options"}`` with the options' JSON schema (or ``None``)."""
        model = self.options_model()
        return {
            "name": self.name,
            "description": self.description,
            "options": model.model_json_schema() if model is not None else None,
        }


class Registry:
    """An ordered set of :class:`Choice` s of one kind (the first is listed first, not a default)."""

    def __init__(self, what: str, code: str, choices: list[Choice]) -> None:
        self.what = what
        self.code = code
        self._choices = {c.name: c for c in choices}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._choices)

    def __contains__(self, name: object) -> bool:
        return name in self._choices

    def __iter__(self) -> Iterator[Choice]:
        return iter(self._choices.values())

    def get(self, name: str) -> Choice:
        """The choice called ``name``; ``self.code`` (listing the valid names) for any other."""
        if name not in self._choices:
            raise unknown_choice(self.code, self.what, name, self.names)
        return self._choices[name]

    def describe(self) -> list[dict[str, Any]]:
        return [c.describe() for c in self]

    def help(self) -> str:
        """``"a (what a does); b (what b does)"`` for CLI help texts."""
        return "; ".join(f"{c.name}: {c.description}" for c in self)


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
