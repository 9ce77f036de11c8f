"""The service's commands: ``autovoice serve`` (the HTTP API), ``worker`` (a Celery worker for the
distributed mode) and ``apikey create|list|revoke``.

Heavy modules are imported inside the commands, so ``autovoice --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from autovoice.cli.tools import JsonOpt, emit, table

apikey_app = typer.Typer(help="Create, list and revoke API keys for the HTTP API.", no_args_is_help=True)


def _db() -> Any:
    from autovoice.config import get_settings
    from autovoice.storage import Database

    db = Database(get_settings())
    db.migrate()
    return db


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    note: Annotated[str, typer.Option("--note", help="A free-text note.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""
    from autovoice.service.auth import create_api_key

    record, token = create_api_key(_db(), name, note=note)

    def human() -> None:
        typer.echo(f"Created API key {record['id']} ({record['name']}). Store it now, it is not shown again:")
        typer.echo(token)

    emit({**record, "key": token}, as_json, human)


@apikey_app.command("list")
def apikey_list(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List API keys (ids, names, prefixes; never the keys themselves)."""
    from autovoice.service.auth import list_api_keys

    keys = list_api_keys(_db(), include_revoked=all_keys)

    def human() -> None:
        if not keys:
            typer.echo("No API keys. Create one with `autovoice apikey create NAME`.")
            return
        rows = [
            (
                k["id"],
                f"{k['prefix']}…",
                k["name"],
                k["created_at"],
                "revoked" if k["revoked"] else (k["last_used_at"] or "never"),
            )
            for k in keys
        ]
        table(("ID", "PREFIX", "NAME", "CREATED", "LAST USED"), rows)

    emit({"keys": keys}, as_json, human)


@apikey_app.command("revoke")
def apikey_revoke(
    key: Annotated[str, typer.Argument(help="The key's id (key_...) or its unique name.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API key; requests using it are refused from now on."""
    from autovoice.service.auth import revoke_api_key

    record = revoke_api_key(_db(), key)
    emit(record, as_json, lambda: typer.echo(f"Revoked {record['id']} ({record['name']})."))


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; non-loopback requires API keys.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Server processes (distributed mode only; AUTOVOICE_SERVER_WORKERS)."
        ),
    ] = None,
) -> None:
    """Run the HTTP + WebSocket API (embedded job queue unless AUTOVOICE_BROKER_URL is set)."""
    from autovoice.service.app import serve as run

    run(host=host, port=port, workers=workers)


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Jobs at once (child processes); 1 per GPU.")
    ] = 1,
    name: Annotated[str | None, typer.Option("--name", "-n", help="Worker name (default: host).")] = None,
) -> None:
    """Run a Celery worker for distributed mode (needs AUTOVOICE_BROKER_URL and AUTOVOICE_DATABASE_URL)."""
    from autovoice.config import get_settings
    from autovoice.jobs.worker import run_worker
    from autovoice.service.logs import configure_server_logging, route_native_stderr
    from autovoice.service.observability import worker_metrics

    settings = get_settings()
    configure_server_logging(settings)
    route_native_stderr()  # the pool processes' native stderr lines (libmpg123) as JSON records
    observer, serve_metrics = worker_metrics(settings)  # AUTOVOICE_WORKER_METRICS_PORT
    run_worker(
        settings,
        concurrency=concurrency,
        name=name,
        loglevel=settings.log_level,
        observer=observer,
        on_child_start=serve_metrics,
    )
