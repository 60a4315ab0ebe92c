"""Read pip-audit's JSON report: list what it found, accept what audit-ignore.txt names
(with its reason), and fail on anything else, including packages it could not audit
(the vulnerability service unreachable is not a clean result).

    python scripts/audit_report.py var/audit/pip-audit.json audit-ignore.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def accepted(path: Path) -> dict[str, str]:
    """ID -> 'package: reason' from the ignore file."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            vuln_id, package, reason = (line.split(None, 2) + ["", ""])[:3]
            if not reason:
                raise SystemExit(f"{path}: {vuln_id} has no reason; say why it is accepted")
            out[vuln_id] = f"{package}: {reason}"
    return out


def check(report: dict, ignore: dict[str, str]) -> list[str]:
    """The problems: vulnerabilities not accepted, packages not audited."""
    problems, deps = [], report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    for dep in deps:
        for vuln in dep.get("vulns", []):
            ids = [vuln["id"], *vuln.get("aliases", [])]
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix"
            known = next((ignore[i] for i in ids if i in ignore), None)
            line = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixed})"
            print(f"  accepted  {line} -- {known}" if known else f"  FOUND     {line}")
            if not known:
                problems.append(line)
    print(
        f"pip-audit: {len(deps) - len(skipped)} of {len(deps)} packages audited, "
        f"{sum(len(d.get('vulns', [])) for d in deps)} vulnerabilities, {len(problems)} not accepted"
    )
    if skipped:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped})
        problems.append(
            f"{len(skipped)} packages not audited ({'; '.join(reasons)}): "
            "is the vulnerability service (pypi.org's JSON API) reachable?"
        )
    return problems


def main(report_path: str, ignore_path: str) -> int:
    try:
        report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"no pip-audit report ({exc}): did pip-audit run?", file=sys.stderr)
        return 2
    problems = check(report, accepted(Path(ignore_path)))
    for problem in problems:
        print(f"audit failed: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
