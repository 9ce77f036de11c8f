"""What `make install` / `make demo` put in `.venv` (what running needs, no dev tools), what `make test`
adds, and `make serve PORT=...`. The recipes are read with `make -n` (nothing is installed)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _make_n(tmp_path: Path, *args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("needs GNU make")
    # A .venv that does not exist yet, so every install step is out of date and shows its recipe.
    proc = subprocess.run(
        ["make", "-n", *args, f"VENV={tmp_path / 'venv'}"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_install_and_demo_leave_the_dev_group_out(tmp_path: Path) -> None:
    for target in ("install", "demo", "serve"):
        recipe = _make_n(tmp_path, target)
        sync = [line for line in recipe.splitlines() if " sync " in line]
        assert sync, recipe
        assert all("--no-dev" in line and "--group dev" not in line for line in sync), (target, sync)


@pytest.mark.parametrize("target", ["test", "lint", "typecheck", "pytest", "audit"])
def test_test_targets_add_the_dev_group(tmp_path: Path, target: str) -> None:
    recipe = _make_n(tmp_path, target)
    assert any(" sync " in line and "--group dev" in line for line in recipe.splitlines()), recipe


def test_serve_takes_a_port_and_a_host(tmp_path: Path) -> None:
    assert "autovoice serve --host 127.0.0.1 --port 8000" in _make_n(tmp_path, "serve")
    assert "autovoice serve --host 0.0.0.0 --port 8080" in _make_n(
        tmp_path, "serve", "PORT=8080", "HOST=0.0.0.0"
    )


def test_dev_tools_are_not_runtime_dependencies() -> None:
    runtime = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    dev = {_name(r) for r in PYPROJECT["dependency-groups"]["dev"]}
    assert {"pytest", "ruff", "mypy", "playwright", "locust", "bandit", "httpx"} <= dev
    assert not runtime & dev


def test_the_package_imports_nothing_from_the_dev_group() -> None:
    """A runtime install has no dev tools: `src/` must not import one (httpx is the tests' client)."""
    dev = {_name(r) for r in PYPROJECT["dependency-groups"]["dev"]}
    dev_modules = {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in dev for d in dists)
    }
    assert "httpx" in dev_modules
    assert "pytest" in dev_modules
    offenders = []
    for path in sorted((REPO / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in dev_modules]
    assert not offenders, offenders
