"""``autovoice models``: list and download the registered weights, or add your own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from autovoice.cli.tools import JsonOpt, emit, progress_bar, table

models_app = typer.Typer(
    help="List and download model weights that are not bundled, or add your own.", no_args_is_help=True
)


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Registered weights (bundled in packages or downloadable), where they are, and whether present."""
    from autovoice.models.weights import REGISTRY, weights_path, weights_present

    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "version": spec.version,
            "license": spec.license,
            "size_bytes": spec.size_bytes,
            "bundled": spec.bundled,
            "path": str(weights_path(spec.name)),
            "present": weights_present(spec.name),
        }
        for spec in REGISTRY.values()
    ]

    def human() -> None:
        table(
            ("NAME", "STATE", "SIZE", "LICENCE", "SOURCE", "PATH"),
            [
                (
                    r["name"],
                    "present" if r["present"] else "missing",
                    f"{(r['size_bytes'] or 0) / 2**20:.1f} MiB",
                    r["license"],
                    "bundled" if r["bundled"] else "download",
                    r["path"],
                )
                for r in rows
            ],
        )

    emit({"models": rows}, as_json, human)


@models_app.command("download")
def models_download(
    name: Annotated[str, typer.Argument(help="Weights name (see `autovoice models list`).")],
    as_json: JsonOpt = False,
) -> None:
    """Download weights into the cache and verify their hash (needs network access)."""
    from autovoice.models.weights import download_weights

    with progress_bar(not as_json) as progress:
        path = download_weights(name, progress=progress)
    emit({"name": name, "path": str(path)}, as_json, lambda: typer.echo(f"{name}: {path}"))


@models_app.command("add")
def models_add(
    name: Annotated[str, typer.Argument(help="One of {local_models}.")],
    path: Annotated[Path, typer.Argument(help="A file (.pt) or a Hugging Face folder you have.")],
    as_json: JsonOpt = False,
) -> None:
    """Add a content encoder (or RMVPE) from your own file or folder: checked, then copied into the cache."""
    from autovoice.engines.trained import add_user_weights

    with progress_bar(not as_json) as progress:
        progress(0.0, f"checking {name}")
        stored = add_user_weights(name, path)
    emit({"name": name, "path": str(stored)}, as_json, lambda: typer.echo(f"{name}: {stored}"))
