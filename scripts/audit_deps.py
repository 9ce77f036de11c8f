"""Dependency vulnerability audit of uv.lock with pip-audit (``make audit`` runs it).

Exports every locked package (all groups) with ``uv export``, runs ``pip-audit --no-deps`` on that list
and reads its JSON report:

- a known vulnerability (not in ``IGNORED`` below, each with its reason) fails the run (exit 1);
- a package the vulnerability source could not look up is listed. When none could be looked up (the
  source is unreachable: PyPI's JSON API or OSV blocked, offline), the run says so plainly — the lock
  was NOT audited — and exits 0 unless ``--strict``, so an offline CI does not fail on it.

    .venv/bin/python scripts/audit_deps.py [--uv .uv/bin/uv] [--service pypi|osv] [--strict]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Vulnerability ids accepted on purpose, each with the reason; empty today.
IGNORED: dict[str, str] = {}


def export_requirements(uv: str, dest: Path) -> int:
    """Write the locked packages (all groups, pinned) to ``dest``; returns how many."""
    args = [uv, "export", "--frozen", "--format", "requirements-txt", "--no-hashes", "--all-groups"]
    args += ["--no-emit-project", "--quiet", "-o", str(dest)]
    subprocess.run(
        args,
        cwd=ROOT,
        check=True,
    )
    return sum(1 for line in dest.read_text().splitlines() if "==" in line and not line.startswith("#"))


def run_pip_audit(requirements: Path, service: str, report: Path) -> tuple[int, str]:
    args = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps", "--disable-pip"]
    args += ["--progress-spinner", "off", "-s", service, "-f", "json", "-o", str(report)]
    for vuln_id in IGNORED:
        args += ["--ignore-vuln", vuln_id]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uv", default=str(ROOT / ".uv" / "bin" / "uv"))
    ap.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    ap.add_argument("--strict", action="store_true", help="fail when the source cannot be reached")
    ns = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="autovoice-audit-") as tmp:
        reqs, report = Path(tmp) / "requirements.txt", Path(tmp) / "audit.json"
        locked = export_requirements(ns.uv, reqs)
        rc, stderr = run_pip_audit(reqs, ns.service, report)
        if not report.exists():  # pip-audit itself failed, e.g. a DNS error talking to OSV
            last = stderr.strip().splitlines()[-1:] or ["no output"]
            print(f"pip-audit ({ns.service}): NOT AUDITED: the vulnerability source failed: {last[0][:300]}")
            return 1 if ns.strict else 0
        doc = json.loads(report.read_text())

    deps = doc.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    audited = len(deps) - len(skipped)
    print(f"pip-audit ({ns.service}): {locked} locked packages, {audited} audited, {len(skipped)} not found")
    for d in vulnerable:
        for v in d["vulns"]:
            fixes = ", ".join(v.get("fix_versions") or []) or "none"
            print(f"  VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in: {fixes})")
    if vulnerable:
        return 1
    if deps and audited == 0:
        print(
            f"  NOT AUDITED: the {ns.service} vulnerability source answered no package (e.g. "
            f"'{skipped[0]['skip_reason']}'); it is unreachable from this machine. Run `make audit` where "
            "it is reachable."
        )
        return 1 if ns.strict else 0
    for d in skipped:
        print(f"  not audited: {d['name']} {d['version']}: {d['skip_reason']}")
    print("  no known vulnerabilities in the audited packages" if rc == 0 else f"  pip-audit exit {rc}")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
