"""The helpers every ``autovoice`` command uses: the ``--json`` option, output, progress bars, errors,
the device, and help texts whose choices come from the registries.

One set for the whole CLI (every module of :mod:`autovoice.cli`). Commands raise
:class:`~autovoice.errors.AutoVoiceError`; :func:`autovoice.cli.run` prints it once (with
:func:`report_error`) and picks the exit code. Nothing heavy is imported here.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from autovoice.errors import AutoVoiceError

log = logging.getLogger("autovoice")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def emit(doc: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    """Print ``doc`` as the one JSON document on stdout, or call ``human`` to print it for people."""
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n")
    else:
        human()


def device() -> str:
    """The compute device the settings ask for (``AUTOVOICE_DEVICE``), resolved (``auto`` -> cuda/cpu)."""
    from autovoice.config import get_settings
    from autovoice.models.devices import resolve_device

    return resolve_device(get_settings().device)


def usage_error(message: str) -> AutoVoiceError:
    """``invalid_usage``: options that do not go together (exit code 2)."""
    from autovoice.errors import ParameterError

    return ParameterError("invalid_usage", message)


def report_error(exc: AutoVoiceError, as_json: bool, hint: str | None = None) -> None:
    """An error on stderr (``error [code]: message``), and as ``{"error": ...}`` on stdout with --json."""
    if as_json:
        sys.stdout.write(json.dumps({"error": exc.to_dict()}, default=str) + "\n")
    typer.secho(f"error [{exc.code}]: {exc.message}", fg=typer.colors.RED, err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)


#: Help placeholders for option values, by their Python type (Typer would print ``<str>``, ``<float>``).
_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "Path": "PATH"}


def readable_help(command: Any) -> Any:
    """Plain placeholders in ``--help`` for the whole command tree, in place: ``INPUT...`` rather than
    ``{inputs}...``, ``TEXT``/``NUMBER``/``PATH`` rather than ``<str>``/``<float>``/``<path>``, and
    nothing rather than ``<bool>`` after a flag. A placeholder a command sets itself is kept."""
    import typer.core

    params = list(command.params)
    help_option = command.get_help_option(typer.Context(command, info_name=command.name))
    if help_option is not None:
        params.append(help_option)
    for param in params:
        if getattr(param, "_readable", False):  # a command object shown twice keeps its labels
            continue
        setattr(param, "_readable", True)  # noqa: B010
        if isinstance(param, typer.core.TyperArgument):
            name = (param.metavar or param.name or "ARG").upper()
            many = param.nargs != 1
            if many and param.metavar is None:
                name = name.removesuffix("S")  # inputs -> INPUT...
            label = name + ("..." if many else "")
            param.metavar = label
            usage = label if param.required else f"[{label}]"
            # Typer writes "{NAME}" for a required argument; the usage line keeps the plain name.
            setattr(param, "get_usage_pieces", lambda ctx, usage=usage: [usage])  # noqa: B010
            setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010  (the name says it)
        elif isinstance(param, typer.core.TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else _METAVARS.get(param.bare_type())
    for sub in getattr(command, "commands", {}).values():
        readable_help(sub)
    return command


def _walk(command: Any, args: Sequence[str]) -> tuple[Any, list[str]]:
    """The command ``args`` name, and the names on the way to it (options are skipped)."""
    path = [command.name or "autovoice"]
    for arg in args:
        if arg.startswith("-"):
            continue
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        path.append(arg)
        command = sub
    return command, path


def command_path(command: Any, args: Sequence[str]) -> str:
    """The command line's own command, e.g. ``autovoice profile create``, found by walking ``args``
    through the command groups (options are skipped)."""
    return " ".join(_walk(command, args)[1])


def choice_names(kind: str) -> tuple[str, ...]:
    """The names a CLI option chooses from, read from their one definition (a registry, a ``Literal``'s
    tuple, a settings-dependent list): ``engines``, ``streaming_engines``, ``f0_methods``,
    ``live_f0_methods``, ``live_f0_default``, ``separation``, ``contents``, ``presets``, ``metrics_levels``,
    ``sample_rates``, ``local_models``, ``voices``, ``default_voice``. Imports that definition, so it is
    called only to show a command's ``--help`` (see :func:`fill_choices`). ``KeyError`` for another
    ``kind``."""
    match kind:
        case "engines":
            from autovoice.engines import ENGINES

            return ENGINES.names
        case "streaming_engines":
            from autovoice.pipeline.live import streaming_engines

            return tuple(streaming_engines())
        case "f0_methods":
            from autovoice.analysis.f0 import F0_METHODS

            return F0_METHODS.names
        case "live_f0_methods":
            from autovoice.pipeline.live import LIVE_F0_METHODS

            return LIVE_F0_METHODS
        case "live_f0_default":
            from autovoice.pipeline.live import LiveOptions

            return (str(LiveOptions.model_fields["f0_method"].default),)
        case "separation":
            from autovoice.separation import SEPARATORS

            return SEPARATORS.names
        case "contents":
            from autovoice.pipeline.pitch_plan import CONTENT_CHOICES

            return tuple(CONTENT_CHOICES)
        case "presets":
            from autovoice.pipeline.presets import PRESETS

            return PRESETS
        case "metrics_levels":
            from autovoice.metrics import REPORT_LEVELS

            return tuple(REPORT_LEVELS)
        case "sample_rates":
            from autovoice.pipeline.live import LIVE_SAMPLE_RATES

            return tuple(map(str, LIVE_SAMPLE_RATES))
        case "local_models":
            from autovoice.models.local import LOCAL_NAMES

            return LOCAL_NAMES
        case "voices":
            from autovoice.tts import list_voices

            return tuple(str(v["name"]) for v in list_voices())
        case "default_voice":
            from autovoice.tts.piper_voice import BUILTIN_VOICE

            return (BUILTIN_VOICE,)
    raise KeyError(kind)


#: ``{kind}`` in an option's help: replaced by :func:`choice_names` ``(kind)``, comma-separated.
_CHOICES = re.compile(r"\{(\w+)\}")


def fill_choices(command: Any, args: Sequence[str]) -> None:
    """Write the choices into the help of the command ``args`` name, in place: a ``{kind}`` in an
    option's or argument's help becomes the names :func:`choice_names` reads from their definition. Only
    that command's definitions are imported (the registries import numpy, which ``autovoice --help``
    must not), so :func:`autovoice.cli.run` calls it when help is asked for."""
    target, _ = _walk(command, args)
    for param in getattr(target, "params", ()):
        text = getattr(param, "help", None)
        if text and "{" in text:
            param.help = _CHOICES.sub(lambda m: ", ".join(choice_names(m.group(1))), text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table on stdout, with a header row."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        typer.secho(line, bold=j == 0)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[float, str], None]]:
    """A rich progress bar on stderr, fed by ``progress(fraction, stage)``."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda fraction, stage: log.debug("progress %.2f %s", fraction, stage)
        return
    with Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=1.0)

        def report(fraction: float, stage: str) -> None:
            bar.update(task, completed=fraction, description=stage)

        yield report
