"""`aigentflow deps`: vulnerability scans against OSV records (the shipped test snapshot, a --db, a local
mirror of api.osv.dev), license policy over the installed tree, and the CycloneDX SBOM; run as a user
runs them, in real temporary projects."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest

from aigentflow.enterprise.vendors.inventory import normalize
from aigentflow.enterprise.vendors.osv import SNAPSHOT
from aigentflow.enterprise.vendors.sbom import check_sbom
from tests.conftest import aigentflow, cli_env, commit_files

REQUIREMENTS = """\
requests==2.30.0          # AFTEST-2023-0001, fixed in 2.31.0
jinja2==3.1.2 \\
    --hash=sha256:0000
pyyaml==5.4b1             # named in the advisory's versions list
urllib3==2.0.7            # after the second fixed event: not affected
flask>=2                  # no exact version: reported, not scanned
"""
PACKAGE_LOCK = {
    "name": "web", "lockfileVersion": 3,
    "packages": {
        "": {"name": "web", "version": "1.0.0"},
        "node_modules/lodash": {"version": "4.17.20"},
        "node_modules/minimist": {"version": "1.2.8"},
        "node_modules/mkdirp/node_modules/minimist": {"version": "1.2.5"},
    },
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return commit_files(tmp_path / "project", {
        "requirements.txt": REQUIREMENTS,
        "package-lock.json": json.dumps(PACKAGE_LOCK),
        "app.py": "print('hi')\n",
    })


def _scan(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    result = aigentflow("deps", "scan", *args, "--json", cwd=cwd, timeout=60, env=env)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_planted_vulnerable_pins_are_found_with_their_fixed_versions(project: Path) -> None:
    result = aigentflow("deps", "scan", "--project", cwd=project, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "CRITICAL  AFTEST-2020-0004   pyyaml 5.4b1 -> no fix" in result.stdout
    assert "AFTEST-2023-0001   requests 2.30.0 -> 2.31.0" in result.stdout
    assert "AFTEST-2021-0006   lodash 4.17.20 -> 4.17.21" in result.stdout
    assert "not scanned, no exact version: flask>=2" in result.stdout

    report = _scan(project)[1]
    found = {(f["id"], f["package"], f["installed"], f["fixed"], f["severity"]) for f in report["findings"]}
    assert found == {
        ("AFTEST-2020-0004", "pyyaml", "5.4b1", None, "critical"),
        ("AFTEST-2023-0001", "requests", "2.30.0", "2.31.0", "medium"),
        ("AFTEST-2024-0002", "jinja2", "3.1.2", "3.1.3", "medium"),   # from its CVSS vector (5.4)
        ("AFTEST-2021-0006", "lodash", "4.17.20", "4.17.21", "high"),
        ("AFTEST-2021-0007", "minimist", "1.2.5", "1.2.6", "critical"),  # the nested copy only
    }
    assert report["sources"] == ["requirements.txt", "package-lock.json"]
    assert report["scanned"] == 7


def test_fail_on_sets_the_threshold(project: Path) -> None:
    (project / "package-lock.json").unlink()
    (project / "requirements.txt").write_text("requests==2.30.0\njinja2==3.1.2\n")
    assert _scan(project, "--fail-on", "high")[0] == 0
    assert _scan(project, "--fail-on", "medium")[0] == 1
    code, report = _scan(project, "--fail-on", "never")
    assert code == 0 and len(report["findings"]) == 2


def test_lockfiles_are_read_transitively(tmp_path: Path) -> None:
    root = commit_files(tmp_path / "locked", {
        "pyproject.toml": '[project]\nname = "locked"\nversion = "0.1"\ndependencies = ["requests"]\n',
        "uv.lock": (
            'version = 1\n[[package]]\nname = "locked"\nversion = "0.1"\nsource = { editable = "." }\n'
            '[[package]]\nname = "Requests"\nversion = "2.31.0"\n'
            '[[package]]\nname = "urllib3"\nversion = "1.26.16"\n'
        ),
    })
    code, report = _scan(root)
    assert code == 1
    assert [(f["package"], f["fixed"]) for f in report["findings"]] == [("urllib3", "1.26.17")]
    assert report["sources"] == ["uv.lock"] and report["scanned"] == 2


def test_self_scan_walks_aigentflows_installed_tree(tmp_path: Path) -> None:
    code, report = _scan(tmp_path, "--self")
    required = {normalize(r.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip())
                for r in metadata.requires("aigentflow") or [] if "extra ==" not in r}
    assert report["target"] == "aigentflow's installed tree"
    assert report["scanned"] > len(required)  # transitive: more than the direct requirements
    everything = _scan(tmp_path, "--self", "--all-installed")[1]
    assert everything["scanned"] == len(installed_distributions())
    assert code == (1 if report["findings"] else 0)


def test_a_database_of_ones_own(project: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.mkdir()
    (db / "all.json").write_text(json.dumps([{
        "id": "LOCAL-1", "summary": "a local advisory", "modified": "2026-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "urllib3"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0.0"}, {"fixed": "2.1.0"}]}]}],
    }]))
    code, report = _scan(project, "--db", str(db))
    assert code == 1 and [f["id"] for f in report["findings"]] == ["LOCAL-1"]
    assert report["findings"][0]["severity"] == "unknown"
    assert _scan(project, "--db", str(db), "--fail-on", "low")[0] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--db", "/nonexistent/osv"], "no vulnerability database at /nonexistent/osv"),
    (["--fail-on", "severe"], "--fail-on 'severe': use one of any, low, medium, high, critical, never"),
    (["--self", "--project"], "--project and --self scan different things"),
    (["--online", "--db", "x"], "--online and --db are two databases"),
])
def test_bad_input_is_refused(project: Path, args: list[str], message: str) -> None:
    result = aigentflow("deps", "scan", *args, cwd=project, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_broken_database_file_is_named(project: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    result = aigentflow("deps", "scan", "--db", str(tmp_path / "bad.json"), cwd=project, timeout=60)
    assert result.returncode == 2
    assert f"{tmp_path / 'bad.json'} is not an OSV JSON file" in result.stderr


def test_online_mode_fails_clearly_when_unreachable(project: Path) -> None:
    env = cli_env(AIGENTFLOW_OSV_API="http://127.0.0.1:9/v1", NO_PROXY="*")
    result = aigentflow("deps", "scan", "--online", cwd=project, timeout=60, env=env)
    assert result.returncode == 2
    assert "cannot reach http://127.0.0.1:9/v1/querybatch" in result.stderr
    assert "scan offline without --online" in result.stderr


@pytest.fixture
def osv_mirror() -> Iterator[tuple[str, list[dict]]]:
    """A local stand-in for api.osv.dev serving the snapshot's records through the documented endpoints."""
    records = {path.stem: json.loads(path.read_text()) for path in SNAPSHOT.glob("*.json")}
    asked: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(body)
            results = []
            for query in body["queries"]:
                package = query["package"]
                hits = [{"id": r["id"], "modified": r["modified"]} for r in records.values()
                        if any(a["package"]["name"] == package["name"] for a in r["affected"])]
                results.append({"vulns": hits} if hits else {})
            self._send({"results": results})

        def do_GET(self) -> None:
            self._send(records[self.path.rsplit("/", 1)[-1]])

        def _send(self, data: dict) -> None:
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", asked
    server.shutdown()


def test_online_mode_queries_the_batch_endpoint(project: Path, osv_mirror: tuple[str, list[dict]]) -> None:
    api, asked = osv_mirror
    code, report = _scan(project, "--online", env=cli_env(AIGENTFLOW_OSV_API=api, NO_PROXY="*"))
    assert code == 1
    assert report["database"] == api
    assert {"package": {"name": "lodash", "ecosystem": "npm"}, "version": "4.17.20"} in asked[0]["queries"]
    assert {f["id"] for f in report["findings"]} == {
        "AFTEST-2020-0004", "AFTEST-2023-0001", "AFTEST-2024-0002", "AFTEST-2021-0006", "AFTEST-2021-0007"}


# -- licenses --------------------------------------------------------------------------------------


def _fake_distribution(site: Path, name: str, version: str, headers: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{headers}\n")


def installed_distributions() -> dict[str, str]:
    """What a fresh Python of this environment finds installed (name: version), as the CLI does: not this
    test process, where Ray, once imported, puts its vendored distributions (``ray/thirdparty_files``) on
    sys.path."""
    import subprocess
    import sys

    code = ("import json; from importlib import metadata\n"
            "from aigentflow.enterprise.vendors.inventory import normalize\n"
            "print(json.dumps({normalize(d.metadata['Name']): d.version for d in metadata.distributions()}))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=cli_env())
    return json.loads(found.stdout)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory on PYTHONPATH with two distributions of its own: one GPL, one with no license at all."""
    site = tmp_path / "site"
    _fake_distribution(site, "copyleft_thing", "1.0", "License: GPLv3+")
    _fake_distribution(site, "mystery", "0.1", "Classifier: Programming Language :: Python")
    return site


def _licenses(cwd: Path, site: Path, *args: str) -> tuple[int, dict]:
    env = cli_env(PYTHONPATH=f"{site}:{cli_env().get('PYTHONPATH', '')}")
    result = aigentflow("deps", "licenses", *args, "--json", cwd=cwd, timeout=60, env=env)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_licenses_deny_the_configured_licenses_and_report_unknowns(tmp_path: Path, site: Path) -> None:
    code, report = _licenses(tmp_path, site)
    assert code == 1
    assert [(v["name"], v["license"]) for v in report["violations"]] == [("copyleft-thing", "GPL-3.0-or-later")]
    assert report["policy"]["deny"] == ["AGPL-3.0", "GPL-3.0", "SSPL-1.0"]  # compliance.denied_licenses
    assert [u["name"] for u in report["unknown"]] == ["mystery"]
    rows = {r["name"]: r for r in report["distributions"]}
    assert rows["aigentflow"]["license"] == "Apache-2.0" and rows["aigentflow"]["allowed"]
    assert len(rows) == len(installed_distributions()) + 2

    text = aigentflow("deps", "licenses", cwd=tmp_path, timeout=60,
                      env=cli_env(PYTHONPATH=f"{site}:{cli_env().get('PYTHONPATH', '')}"))
    assert "DENIED  copyleft-thing 1.0: GPL-3.0-or-later (from License)" in text.stdout
    assert "ok      mystery 0.1: UNKNOWN (from none)" in text.stdout
    assert "1 violation(s), 1 unknown" in text.stdout


def test_license_policy_options(tmp_path: Path, site: Path) -> None:
    assert _licenses(tmp_path, site, "--deny", "SSPL-1.0")[0] == 0
    code, report = _licenses(tmp_path, site, "--deny", "SSPL-1.0", "--fail-unknown")
    assert code == 1 and [v["name"] for v in report["violations"]] == ["mystery"]
    code, report = _licenses(tmp_path, site, "--allow", "MIT,Apache-2.0", "--deny", "SSPL-1.0")
    assert code == 1
    names = {v["name"] for v in report["violations"]}
    assert "copyleft-thing" in names and "aigentflow" not in names and "mystery" not in names


# -- SBOM ------------------------------------------------------------------------------------------


def test_sbom_lists_every_installed_distribution(tmp_path: Path) -> None:
    output = tmp_path / "out" / "sbom.json"
    result = aigentflow("deps", "sbom", "--output", str(output), cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    installed = installed_distributions()
    assert f"wrote {len(installed)} components to {output}" in result.stderr
    bom = json.loads(output.read_text())
    assert check_sbom(bom) == []
    assert (bom["bomFormat"], bom["specVersion"], bom["version"]) == ("CycloneDX", "1.5", 1)
    subject = bom["metadata"]["component"]
    assert subject["name"] == "aigentflow" and subject["type"] == "application"
    listed = {normalize(c["name"]): c for c in [*bom["components"], subject]}
    assert set(listed) == set(installed)
    for name, component in listed.items():
        assert component["purl"] == f"pkg:pypi/{name}@{installed[name]}" == component["bom-ref"]
    assert listed["requests"]["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    graph = {d["ref"]: d["dependsOn"] for d in bom["dependencies"]}
    assert f"pkg:pypi/urllib3@{installed['urllib3']}" in graph[listed["requests"]["purl"]]
    assert len(graph) == len(installed)


def test_sbom_to_standard_output_parses() -> None:
    result = aigentflow("deps", "sbom", cwd=Path.cwd(), timeout=60)
    assert result.returncode == 0
    assert check_sbom(json.loads(result.stdout)) == []


def test_vendor_security_commands_never_import_ray_or_litellm(project: Path, user_config: Path) -> None:
    for command in (["deps", "scan", "--self"], ["deps", "scan"], ["deps", "licenses"], ["deps", "sbom"],
                    ["vendors", "list"], ["vendors", "sla"]):
        probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", *command],
                               cwd=project, capture_output=True, text=True, timeout=60, check=False)
        assert probe.returncode in (0, 1), probe.stderr[-2000:]
        modules = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
        assert "aigentflow.enterprise.vendors" in modules
        assert not modules & {"ray", "litellm"}, command
