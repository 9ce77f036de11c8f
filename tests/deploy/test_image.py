"""The container files in deploy/ are valid and follow the usual Dockerfile rules (hadolint's ids, which is
not packaged for PyPI or Debian 12: the checks are written here over the official Go parser from the
``dockerfile`` wheel), the compose files pass ``docker compose config``, and the shell scripts pass
shellcheck. Building the image itself needs an engine and minutes: see docs/operations.md and
deploy/images/build-base.sh."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import dockerfile
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "deploy" / "Dockerfile", *sorted((ROOT / "deploy" / "images").glob("*/Dockerfile"))]
SCRIPTS = [
    ROOT / "scripts" / "backup.sh",
    ROOT / "scripts" / "restore.sh",
    ROOT / "deploy" / "images" / "build-base.sh",
    ROOT / "deploy" / "images" / "postgres" / "entrypoint.sh",
    ROOT / "deploy" / "images" / "smoke.sh",
]


def lint(path: Path) -> list[str]:
    """Problems in one Dockerfile, each prefixed with the hadolint rule it mirrors."""
    commands = dockerfile.parse_file(str(path))
    args = {}
    problems = []
    for c in commands:
        where = f"{path.name}:{c.start_line}"
        if c.cmd == "ARG" and "=" in c.value[0]:
            name, default = c.value[0].split("=", 1)
            args[name] = default
        elif c.cmd == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), c.value[0])
            if ":" not in image or image.endswith(":latest"):
                problems.append(f"DL3006/DL3007 {where}: pin the base image's tag ({image})")
        elif c.cmd == "ADD":
            problems.append(f"DL3020 {where}: use COPY, not ADD")
        elif c.cmd == "RUN":
            run = c.value[0]
            if "apt-get install" in run:
                if "--no-install-recommends" not in run or " -y" not in run:
                    problems.append(f"DL3015 {where}: apt-get install -y --no-install-recommends")
                if "rm -rf /var/lib/apt/lists" not in run:
                    problems.append(f"DL3009 {where}: delete the apt lists in the same layer")
            for pkg in re.findall(r"pip install ([^&;]+)", run):
                if "--no-cache-dir" not in pkg:
                    problems.append(f"DL3042 {where}: pip install --no-cache-dir")
                names = [w for w in pkg.split() if not w.startswith("-")]
                if any("==" not in n for n in names):
                    problems.append(f"DL3013 {where}: pin pip packages ({pkg.strip()})")
            if "uv sync" in run and "--frozen" not in run:
                problems.append(f"{where}: uv sync --frozen (install exactly the lock)")
            if re.search(r"\bcurl\b|\bwget\b", run):
                problems.append(f"{where}: no downloads outside package managers")
        elif c.cmd in ("CMD", "ENTRYPOINT") and not c.json:
            problems.append(f"DL3025 {where}: {c.cmd} in JSON form")
    users = [c.value[0] for c in commands if c.cmd == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append(f"DL3002 {path.name}: the last USER must not be root")
    return problems


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_pass_the_rules(path: Path) -> None:
    assert lint(path) == []


def test_the_linter_catches_what_it_checks(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python\nADD . /app\nRUN apt-get install ffmpeg\nRUN pip install uv\nCMD autovoice serve\n"
    )
    found = {p.split()[0] for p in lint(bad)}
    assert found == {"DL3006/DL3007", "DL3020", "DL3015", "DL3009", "DL3042", "DL3013", "DL3025", "DL3002"}


def test_build_context_is_only_what_the_image_needs() -> None:
    """Every COPY source passes deploy/Dockerfile.dockerignore, and the local .venv does not."""
    patterns = [
        line.strip()
        for line in (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pat) or path.startswith(pat + "/"):
                keep = negate
        return keep

    sources = [
        src
        for c in dockerfile.parse_file(str(ROOT / "deploy" / "Dockerfile"))
        if c.cmd == "COPY"
        for src in c.value[:-1]
    ]
    assert sources
    assert all(included(s) for s in sources), sources
    assert not included(".venv")
    assert not included(".git")


def _compose() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.skipif(
    _compose() is None, reason="needs docker compose or docker-compose (Debian: docker-compose)"
)
@pytest.mark.parametrize("files", [["docker-compose.yml"], ["docker-compose.yml", "compose.offline.yml"]])
def test_compose_config_is_valid(files: list[str]) -> None:
    compose = _compose()
    assert compose is not None
    args = [a for f in files for a in ("-f", str(ROOT / "deploy" / f))]
    done = subprocess.run(
        [*compose, *args, "config"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for service in ("api", "worker", "redis", "postgres"):
        assert f"\n  {service}:\n" in done.stdout, service
    assert done.stdout.count("healthcheck:") >= 4  # api, worker, redis and postgres are health-checked


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck (Debian package)")
def test_scripts_pass_shellcheck() -> None:
    done = subprocess.run(
        ["shellcheck", *map(str, SCRIPTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout
