"""``autovoice profile``: create, list, show and delete voice profiles, and add or remove their trained
models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from autovoice.cli.tools import JsonOpt, device, emit, progress_bar, table, usage_error

if TYPE_CHECKING:
    from autovoice.analysis.vocal_range import VocalRange
    from autovoice.profiles import SampleQuality, TrainedModel, VoiceProfile
    from autovoice.profiles.trained import StagedModel

profile_app = typer.Typer(help="Create, list, show and delete voice profiles.", no_args_is_help=True)


def _print_profile(p: VoiceProfile) -> None:
    r, q = p.vocal_range, p.quality
    typer.echo(f"Profile {p.name!r}  id={p.id}  revision={p.revision}  created={p.created_at}")
    if r is None or q is None:
        typer.echo("  recordings none (a trained model alone: give a manual pitch, not auto key)")
    else:
        _print_range(r, q)
    for m in p.models:
        _print_model(m)


def _print_model(m: TrainedModel) -> None:
    d = m.to_dict()
    extras = [f"{d['sample_rate'] / 1000:g} kHz" if d["sample_rate"] else None]
    extras += ["F0" if d["f0"] else "no F0" if d["f0"] is not None else None]
    extras += [f"{d['speakers']} speaker(s)" if d["speakers"] else None, d["embedder"]]
    extras += [f"index {d['index_dim']}-d" if d["index_dim"] else None]
    variant = f" {d['variant']}" if d["variant"] else ""
    typer.echo(
        f"  model      {m.id}  {m.name!r}  {m.kind}{variant}, "
        + ", ".join(str(x) for x in extras if x)
        + f", {m.size_bytes / 2**20:.1f} MiB"
    )


def _print_range(r: VocalRange, q: SampleQuality) -> None:
    typer.echo(
        f"  range      {r.lowest_note}–{r.highest_note} ({r.lowest_hz:.0f}–{r.highest_hz:.0f} Hz, "
        f"{r.span_semitones:.1f} semitones), median {r.to_dict()['median_note']} ({r.median_hz:.0f} Hz)"
    )
    t = r.to_dict()["tessitura_notes"]
    typer.echo(
        f"  tessitura  {t[0]}–{t[1]} ({r.tessitura_low_hz:.0f}–{r.tessitura_high_hz:.0f} Hz); "
        f"rests on {r.voiced_seconds:.1f} s voiced ({r.confidence} confidence)"
    )
    if r.style != "unknown":
        sings = r.singing()
        how = "as measured" if r.style == "sung" else "estimated from speech"
        typer.echo(
            f"  voice      {r.style}; songs aim at a singing median of {sings.to_dict()['median_note']} "
            f"({sings.median_hz:.0f} Hz, {how})"
        )
    typer.echo(
        f"  samples    {q.n_samples} file(s), {q.duration_s:.1f} s, {q.voiced_s:.1f} s voiced, "
        f"SNR ≈ {q.snr_db:.0f} dB, silence {q.silence_ratio * 100:.0f}%, "
        f"clipped {q.clipped_fraction * 100:.3f}%"
    )
    for w in q.warnings:
        typer.secho(f"  warning    {w}", fg=typer.colors.YELLOW)


_ModelOpt = Annotated[
    Path | None, typer.Option("--model", help="A trained model: RVC/Applio .pth or so-vits-svc G_*.pth.")
]
_IndexOpt = Annotated[Path | None, typer.Option("--index", help="The RVC model's FAISS .index file.")]
_ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="The so-vits-svc model's config.json (required for it).")
]
_ClusterOpt = Annotated[
    Path | None, typer.Option("--cluster", help="A so-vits-svc cluster or feature-retrieval model.")
]


def _stage(model: Path, index: Path | None, config: Path | None, cluster: Path | None) -> StagedModel:
    from autovoice.pipeline.enroll import stage_model

    return stage_model(model, index=index, config=config, cluster=cluster)


@profile_app.command("create")
def profile_create(
    name: Annotated[str, typer.Argument(help="Unique profile name.")],
    samples: Annotated[
        list[Path] | None,
        typer.Argument(help="Recordings of the voice (10 s to a few minutes); optional with --model."),
    ] = None,
    model: _ModelOpt = None,
    index: _IndexOpt = None,
    config: _ConfigOpt = None,
    cluster: _ClusterOpt = None,
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild an existing profile.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build a voice profile from recordings (embedding, vocal range, quality report) and/or a trained
    model (RVC v1/v2, Applio, so-vits-svc 4.x)."""
    from autovoice.pipeline.enroll import enroll
    from autovoice.profiles import ProfileStore, validate_profile_name

    store = ProfileStore()
    name = validate_profile_name(name)
    if model is None and (index or config or cluster):
        raise usage_error("--index, --config and --cluster go with --model FILE.pth.")
    if not samples and model is None:
        raise usage_error(
            "Give recordings of the voice (SAMPLE...), a trained model (--model FILE.pth), or both."
        )
    if store.exists(name) and not replace:  # checked before the slow analysis, and again by save()
        from autovoice.errors import ConflictError

        raise ConflictError(
            "profile_exists",
            f"A profile named '{name}' already exists. Delete it first or replace it.",
            {"profile": name},
        )
    with progress_bar(bool(samples) and not as_json) as progress:
        profile = enroll(
            name,
            samples or (),
            model=None if model is None else lambda: _stage(model, index, config, cluster),
            save=lambda p, staged: store.save(p, replace=replace, models=staged),
            device=device() if samples else "cpu",
            progress=progress,
        )
    emit(profile.summary(), as_json, lambda: _print_profile(profile))


@profile_app.command("add-model")
def profile_add_model(
    name: Annotated[str, typer.Argument(help="Profile name or id.")],
    model: Annotated[Path, typer.Argument(help="RVC/Applio .pth or so-vits-svc G_*.pth.")],
    index: _IndexOpt = None,
    config: _ConfigOpt = None,
    cluster: _ClusterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a trained model to a profile (checked first; nothing is stored if it is refused)."""
    from autovoice.profiles import ProfileStore

    store = ProfileStore()
    store.path_of(name)  # profile_not_found before copying a large file
    with _stage(model, index, config, cluster) as staged:
        added = store.add_model(name, staged)
    emit(added.to_dict(), as_json, lambda: _print_model(added))


@profile_app.command("remove-model")
def profile_remove_model(
    name: Annotated[str, typer.Argument(help="Profile name or id.")],
    model_id: Annotated[str, typer.Argument(help="The model's id (mdl_..., see `autovoice profile show`).")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a trained model (and its files) from a profile."""
    from autovoice.profiles import ProfileStore

    removed = ProfileStore().remove_model(name, model_id)
    emit(
        {"deleted": removed.id, "name": removed.name, "profile": name},
        as_json,
        lambda: typer.echo(f"Removed model {removed.id} ({removed.name!r}) from {name!r}."),
    )


@profile_app.command("list")
def profile_list(as_json: JsonOpt = False) -> None:
    """List voice profiles."""
    from autovoice.profiles import ProfileStore

    profiles = ProfileStore().list()

    def human() -> None:
        if not profiles:
            typer.echo("No profiles yet. Create one with `autovoice profile create NAME SAMPLE...`.")
            return
        rows = [
            (
                p.name,
                p.id,
                f"{p.vocal_range.lowest_note}–{p.vocal_range.highest_note}" if p.vocal_range else "–",
                f"{p.quality.voiced_s:.1f} s" if p.quality else "–",
                ", ".join(m.kind for m in p.models) or "–",
                p.revision,
            )
            for p in profiles
        ]
        table(("NAME", "ID", "RANGE", "VOICED", "MODELS", "REVISION"), rows)

    emit({"profiles": [p.summary() for p in profiles]}, as_json, human)


@profile_app.command("show")
def profile_show(
    name: Annotated[str, typer.Argument(help="Profile name or id.")], as_json: JsonOpt = False
) -> None:
    """Show one profile: range, tessitura, sample quality, trained models."""
    from autovoice.profiles import ProfileStore

    profile = ProfileStore().get(name)
    emit(profile.summary(), as_json, lambda: _print_profile(profile))


@profile_app.command("delete")
def profile_delete(
    name: Annotated[str, typer.Argument(help="Profile name or id.")], as_json: JsonOpt = False
) -> None:
    """Delete a profile and its files."""
    from autovoice.profiles import ProfileStore

    profile = ProfileStore().delete(name)
    emit(
        {"deleted": profile.id, "name": profile.name},
        as_json,
        lambda: typer.echo(f"Deleted profile {profile.name!r} ({profile.id})."),
    )
