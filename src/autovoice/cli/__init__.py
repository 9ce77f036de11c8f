"""The ``autovoice`` command line: the app, its entry point (:func:`run`) and the hint after an error.

One module per verb group: :mod:`~autovoice.cli.profile`, :mod:`~autovoice.cli.convert` (with
``analyze`` and ``engines``), :mod:`~autovoice.cli.speech` (``tts``), :mod:`~autovoice.cli.live`,
:mod:`~autovoice.cli.models`, :mod:`~autovoice.cli.serve` (``serve``, ``worker``, ``apikey``), with the
shared helpers in :mod:`~autovoice.cli.tools`. Nothing outside this package imports from it.

Heavy modules (numpy, torch, the models) are imported inside the commands, so ``autovoice --help``
starts fast. Exit codes: 0 success, 2 bad input or usage, 1 internal failure. With ``--json`` a command
prints exactly one JSON document on stdout (its result, or ``{"error": {...}}``) and nothing else there;
progress and logs go to stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
import typer.main

from autovoice import __version__
from autovoice.cli.convert import analyze_cmd, convert_cmd, engines_cmd
from autovoice.cli.live import live_cmd
from autovoice.cli.models import models_app
from autovoice.cli.profile import profile_app
from autovoice.cli.serve import apikey_app, serve, worker
from autovoice.cli.speech import tts_cmd
from autovoice.cli.tools import command_path, fill_choices, readable_help, report_error
from autovoice.errors import AutoVoiceError

log = logging.getLogger("autovoice")

app = typer.Typer(
    name="autovoice",
    help="AutoVoice: voice profiles, singing voice conversion and speech, measured. Offline, CPU or GPU.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(profile_app, name="profile")
app.add_typer(models_app, name="models")
app.add_typer(apikey_app, name="apikey")
app.command("serve")(serve)
app.command("worker")(worker)
app.command("live")(live_cmd)
app.command("analyze")(analyze_cmd)
app.command("convert")(convert_cmd)
app.command("tts")(tts_cmd)
app.command("engines")(engines_cmd)

#: :func:`run` honours these anywhere on the command line, after the subcommand too.
_VERBOSE_FLAGS = ("-v", "--verbose")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"autovoice {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log debug details to stderr (anywhere on the line).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    _configure_logging(verbose)


def _configure_logging(verbose: bool) -> None:
    """AutoVoice's own debug lines with ``-v``; third-party libraries stay at warnings either way."""
    from autovoice.config import get_settings
    from autovoice.service.logs import configure_logging, log_json

    configure_logging("DEBUG" if verbose else "WARNING", json=log_json(get_settings()))


#: The CLI flag an error is about, by its field or else its code, for the hint after it (messages
#: themselves name fields, never flags).
_FLAGS = {
    "engine": "--engine",
    "f0_method": "--f0-method",
    "preset": "--preset",
    "pitch_shift": "--pitch",
    "auto_key": "--auto-key",
    "separation": "--separation",
    "metrics": "--metrics",
    "engine_options": "--engine-options",
    "block_ms": "--block-ms",
}
_CODE_FLAGS = {
    "unknown_engine": "--engine",
    "invalid_f0_method": "--f0-method",
    "invalid_preset": "--preset",
    "invalid_separation": "--separation",
    "invalid_content": "--content",
    "invalid_metrics_level": "--metrics",
    "invalid_pitch_shift": "--pitch",
    "invalid_engine_options": "--engine-options",
    "no_voiced_audio": "--pitch N (instead of --auto-key)",
    "profile_exists": "--replace",
    "model_unavailable": "--separation none",
    "auto_key_needs_recordings": "--pitch N (instead of --auto-key)",
    "profile_needs_recordings": "--engine",
    "model_config_required": "--config config.json",
    "invalid_sample_rate": "--sample-rate",
    "engine_cannot_stream": "--engine world",
    "audio_devices_unavailable": "--input FILE -o OUT",
}


# -- entry point ---------------------------------------------------------------------------------
def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code: 0 ok, 2 caller error, 1 internal error,
    130 interrupted (Ctrl-C; nothing half-written stays behind)."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    if any(a in _VERBOSE_FLAGS for a in args):  # -v works after the subcommand too
        args = ["--verbose", *(a for a in args if a not in _VERBOSE_FLAGS)]
    command = readable_help(typer.main.get_command(app))
    if "--help" in args:
        fill_choices(command, args)
    try:
        rc = command.main(args=args, prog_name="autovoice", standalone_mode=False)
    except typer.Exit as exc:
        rc = int(exc.exit_code)
    except typer.Abort:
        rc = 130
    except typer.TyperException as exc:  # usage errors (Typer's click): unknown option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"error: {exc}", err=True)
        return 2
    except AutoVoiceError as exc:
        flag = _FLAGS.get(str(exc.details.get("field"))) or _CODE_FLAGS.get(exc.code)
        hint = f"{flag} (see `{command_path(command, args)} --help`)" if flag else None
        report_error(exc, as_json, hint=hint)
        return 2 if exc.caller_error else 1
    except KeyboardInterrupt:
        rc = 130
    except Exception as exc:  # the last line of defence: exit 1 with a readable message
        log.debug("internal error", exc_info=True)
        from autovoice.errors import InternalError

        report_error(InternalError("internal_error", f"{type(exc).__name__}: {exc}"), as_json)
        typer.echo("This is a bug in AutoVoice; rerun with -v for the traceback.", err=True)
        return 1
    if rc == 130:
        typer.echo("Interrupted.", err=True)
    return rc if isinstance(rc, int) else 0


def main() -> None:
    """Console entry point (``autovoice``)."""
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
