"""`aigentflow ui` as a user meets it: the real server (a subprocess on 127.0.0.1, a free port) over
a project with real runs, each page rendered by headless Chromium. The tests read the screenshot
(not blank, the expected regions and colours) and the DOM Chromium built (the text a person reads)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from aigentflow.tracing.reader import read_spans
from tests.conftest import aigentflow, cli_env, commit_files
from tests.ui_support import (
    AGENT_BAR,
    GREEN,
    HEADER,
    MODEL_BAR,
    RED,
    SECRET,
    count_near,
    drive_run,
    dump_dom,
    http_status,
    needs_chromium,
    new_project,
    not_blank,
    parse,
    screenshot,
    ui_server,
    user_config_env,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("ui")
    with user_config_env(base / "user-config"):
        repo = new_project(base / "project")
        runs = {"completed": drive_run(repo),
                "failed": drive_run(repo, f"Add a sync command using token {SECRET}"),
                "crashed": drive_run(repo, crash_at="architect"),
                "lenient": drive_run(repo, **{"model.replay_lenient": "true"})}
    return repo, runs


@pytest.fixture(scope="module")
def server(project) -> str:
    repo, _ = project
    with ui_server(repo) as url:
        yield url


@needs_chromium
def test_runs_page_lists_every_run_with_state_tokens_cost_duration(server, project, tmp_path) -> None:
    _, runs = project
    page = parse(dump_dom(server + "/"))
    rows = {row.find_all("a")[0].text: row for row in page.by_id("runs-rows").find_all("tr")}
    assert set(rows) == set(runs.values())
    done = rows[runs["completed"]]
    cells = [td.text for td in done.find_all("td")]
    assert cells[1] == "COMPLETED" and "Add due dates to tasks" in cells[3]
    tokens_in, tokens_out = (int(n) for n in cells[4].split(" / "))
    assert tokens_in > 0 and tokens_out > 0
    assert cells[5] == "$0.0000", "a replayed call costs nothing"
    assert re.fullmatch(r"\d+(\.\d+)? (ms|s)", cells[6]), cells[6]
    assert cells[7] == "replay/demo"
    assert "state-failed" in rows[runs["failed"]].classes and "state-failed" in rows[runs["crashed"]].classes
    lenient = [name for name, run_id in runs.items() if "lenient replay" in rows[run_id].text]
    assert lenient == ["lenient"], "only the lenient replay is marked"
    assert SECRET not in page.text and "[REDACTED]" in rows[runs["failed"]].text

    image = screenshot(server + "/", tmp_path / "runs.png")
    assert not_blank(image)
    assert count_near(image, HEADER, (0, 0, image.width, 30), tolerance=6) > 0.8 * image.width * 30, "the header bar"
    assert count_near(image, RED) > 200, "FAILED states are red"
    assert count_near(image, GREEN) > 50, "COMPLETED is green"


@needs_chromium
def test_run_page_draws_the_span_tree_as_a_waterfall(server, project, tmp_path) -> None:
    repo, runs = project
    others = [r for r in runs.values() if r != runs["completed"]]
    prefix = next(runs["completed"][:n] for n in range(1, 30) if not any(o.startswith(runs["completed"][:n])
                                                                           for o in others))
    url = f"{server}/runs/{prefix}"  # a unique prefix will do
    page = parse(dump_dom(url))
    assert runs["completed"] in page.find_all("h1")[0].text and "COMPLETED" in page.find_all("h1")[0].text
    rows = page.find_all("a", cls="wf-row")
    spans = read_spans(repo / ".aigentflow" / "traces", runs["completed"])
    assert len(rows) == len(spans)
    names = [row.find_all("span", cls="wf-label")[0].text for row in rows]
    assert names[0] == "invoke_workflow aigentflow"
    for expected in ("state ANALYZING", "invoke_agent analyst", "state PLANNING", "invoke_agent project_manager",
                     "state ARCHITECTING", "invoke_agent architect"):
        assert expected in names
    assert sum(1 for n in names if n.startswith("chat ")) == 4
    # nesting shows as indentation; bars are placed by start and sized by duration
    analyst = rows[names.index("invoke_agent analyst")]
    state = rows[names.index("state ANALYZING")]
    depth = re.compile(r"padding-left: ([\d.]+)em")
    assert float(depth.search(analyst.find_all(cls="wf-label")[0].attrs["style"]).group(1)) > \
        float(depth.search(state.find_all(cls="wf-label")[0].attrs["style"]).group(1))
    bars = [row.find_all(cls="wf-bar")[0].attrs["style"] for row in rows]
    lefts = [float(re.search(r"left: ([\d.]+)%", b).group(1)) for b in bars]
    assert lefts[0] == 0.0 and lefts[names.index("state ARCHITECTING")] > lefts[names.index("state ANALYZING")]
    assert analyst.find_all(cls="wf-tokens")[0].text.endswith("out") and analyst.find_all(cls="wf-cost")[0].text
    summary = page.find_all("p", cls="summary")[0].text
    assert f"{len(spans)} spans" in summary and "tokens" in summary
    # the plan's first reply breaks its schema: that model call is an error, in red
    errors = page.find_all("a", cls="error")
    assert [e.find_all(cls="wf-label")[0].text for e in errors] == ["chat replay/demo"]
    assert "schema" in errors[0].text

    image = screenshot(url, tmp_path / "run.png")
    assert not_blank(image)
    assert count_near(image, AGENT_BAR, tolerance=10) > 30, "agent bars"
    assert count_near(image, MODEL_BAR, tolerance=10) > 30, "model-call bars"
    assert count_near(image, RED, tolerance=10) > 30, "the failed model call"


@needs_chromium
def test_lenient_replay_run_says_so(server, project) -> None:
    _, runs = project
    page = parse(dump_dom(f"{server}/runs/{runs['lenient']}"))
    assert "Lenient replay: answers were matched by agent and step" in page.find_all("p", cls="banner")[0].text
    assert "COMPLETED" in page.find_all("h1")[0].text


def test_htmx_requests_get_the_fragment_they_swap_in(server, project) -> None:
    """What the runs table (every 5 s) and a running run's waterfall (every 2 s) refresh with."""
    import urllib.request

    _, runs = project

    def get(path: str) -> str:
        request = urllib.request.Request(server + path, headers={"HX-Request": "true"})
        return urllib.request.urlopen(request).read().decode()

    rows = get("/")
    assert "<html" not in rows and rows.count("<tr") == len(runs) and runs["completed"] in rows
    waterfall = get(f"/runs/{runs['completed']}")
    assert "<html" not in waterfall and "wf-row" in waterfall and "<h1" not in waterfall


@needs_chromium
def test_failed_run_shows_its_error_in_red(server, project, tmp_path) -> None:
    _, runs = project
    url = f"{server}/runs/{runs['crashed']}"
    page = parse(dump_dom(url))
    error = page.find_all("p", cls="error-text")[0].text
    assert "the architect agent crashed" in error
    failed = [row.find_all(cls="wf-label")[0].text for row in page.find_all("a", cls="error")]
    assert "invoke_workflow aigentflow" in failed and "state ARCHITECTING" in failed
    image = screenshot(url, tmp_path / "crashed.png")
    assert count_near(image, RED, tolerance=10) > 300


@needs_chromium
def test_span_details_show_its_attributes(server, project, tmp_path) -> None:
    repo, runs = project
    chat = next(s for s in read_spans(repo / ".aigentflow" / "traces", runs["completed"]) if s["kind"] == "model")
    url = f"{server}/runs/{runs['completed']}/spans/{chat['span_id']}"
    page = parse(dump_dom(url))
    attributes = {tr.find_all("th")[0].text: tr.find_all("td")[0].text
                  for tr in page.find_all("table", cls="attributes")[0].find_all("tr")}
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.usage.input_tokens"] == str(chat["attributes"]["gen_ai.usage.input_tokens"])
    assert attributes["aigentflow.prompt_hash"].startswith("sha256:")
    assert page.find_all("h2")[0].text == chat["name"]
    parent = page.find_all("dl", cls="meta")[0].text
    assert "invoke_agent analyst" in parent
    image = screenshot(url, tmp_path / "span.png")
    assert not_blank(image)


def test_span_details_redact_what_the_ui_knows_is_secret(project, tmp_path) -> None:
    """A value of a secret-looking variable of the UI's environment never shows, even if a span had it."""
    repo, runs = project
    chat = next(s for s in read_spans(repo / ".aigentflow" / "traces", runs["completed"]) if s["kind"] == "model")
    import urllib.request

    with ui_server(repo, env=cli_env(UI_TEST_API_KEY=chat["attributes"]["aigentflow.prompt_hash"])) as url:
        html = urllib.request.urlopen(f"{url}/runs/{runs['completed']}/spans/{chat['span_id']}").read().decode()
    assert chat["attributes"]["aigentflow.prompt_hash"] not in html and "[REDACTED]" in html


@needs_chromium
def test_dashboards_page_shows_every_figure_red_or_green(server, tmp_path) -> None:
    page = parse(dump_dom(server + "/dashboards"))
    cards = {card.attrs["id"].removeprefix("figure-"): card for card in page.find_all("div", cls="figure")}
    assert len(cards) == 19
    for phase in ("phase-mvp", "phase-v10", "phase-v20", "phase-enterprise"):
        assert page.by_id(phase)
    assert [c.find_all(cls="figure-title")[0].text for c in page.by_id("phase-v10").find_all(cls="figure")] == [
        "Agent success rate", "Worktree conflicts/day", "Build pass rate", "Test coverage", "Review approval rate"]
    error_rate = cards["error_rate"]
    assert "status-failing" in error_rate.classes and error_rate.find_all(cls="figure-value")[0].text == "50%"
    assert "target < 1%" in error_rate.text
    assert "status-ok" in cards["trace_capture_rate"].classes and "100%" in cards["trace_capture_rate"].text
    assert "status-ok" in cards["system_health"].classes
    for key in ("tournament_matches_per_week", "generated_agent_approval_rate", "evolution_overhead"):
        assert "status-no-data" in cards[key].classes and cards[key].find_all(cls="figure-value")[0].text == "no data"
    # the CLI latency card was loaded by htmx (vendored, served by the UI) after the page: measured, not pending
    latency = cards["cli_latency_p95"]
    assert "measuring" not in latency.text, "htmx did not load the measured figure"
    assert re.fullmatch(r"\d+\.\d\d s", latency.find_all(cls="figure-value")[0].text)
    assert "status-ok" in latency.classes or "status-failing" in latency.classes

    image = screenshot(server + "/dashboards", tmp_path / "dashboards.png")
    assert not_blank(image)
    assert count_near(image, RED, tolerance=8) > 500 and count_near(image, GREEN, tolerance=8) > 500


@needs_chromium
def test_findings_page_before_any_mining_says_how_to_mine(server) -> None:
    page = parse(dump_dom(server + "/findings"))
    text = page.find_all("main")[0].text
    assert text.startswith("Findings") and "No findings stored yet" in text and "aigentflow patterns mine" in text


@needs_chromium
def test_findings_page_shows_what_the_miner_stored_with_its_evidence(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    from evolution.patterns.corpus import generate
    from evolution.patterns.store import read_findings

    with user_config_env(tmp_path / "user-config"):
        repo = new_project(tmp_path / "mined")
    generate(repo, runs=24, seed=5)
    generate(repo, runs=24, seed=6, tenant="acme", scenarios=("schema", "loops"))
    mined = aigentflow("patterns", "mine", "--json", cwd=repo)
    assert mined.returncode == 0, mined.stderr
    stored = read_findings(repo)
    assert stored, "the corpus plants recurring patterns"
    gaps = {f["details"]["dimension"] for f in stored if f["kind"] == "capability_gap" and f["tenant_id"] == "default"}
    assert gaps == {"task_type", "language", "tool_refused", "skill_missing"}
    assert {f["tenant_id"] for f in stored} == {"default", "acme"}
    with ui_server(repo) as url:
        page = parse(dump_dom(url + "/findings"))
        image = screenshot(url + "/findings", tmp_path / "findings.png")
        with urllib.request.urlopen(url + "/findings?tenant=acme", timeout=30) as response:
            acme = parse(response.read().decode())
        with urllib.request.urlopen(url + "/findings?tenant=globex", timeout=30) as response:
            none = parse(response.read().decode())
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(url + "/findings?tenant=Acme%3B--", timeout=30)
    rows = page.by_id("findings").find_all("tbody")[0].find_all("tr")
    assert len(rows) == len(stored)
    for row, finding in zip(rows, stored, strict=True):
        cells = [td.text for td in row.find_all("td")]
        assert cells[0] == finding["tenant_id"] and cells[1] == finding["kind"].replace("_", " ")
        assert finding["title"][:60] in cells[2] and cells[3] == str(finding["count"])
        links = [a.attrs["href"] for a in row.find_all("a")]
        assert links and all(link.removeprefix("/runs/") in finding["evidence"]["run_ids"] for link in links)
    assert "/findings?tenant=acme" in [a.attrs["href"] for a in page.by_id("tenants").find_all("a")]
    assert not_blank(image)

    mine = [f for f in stored if f["tenant_id"] == "acme"]
    shown = acme.by_id("findings").find_all("tbody")[0].find_all("tr")
    assert [row.attrs["data-id"] for row in shown] == [f["id"] for f in mine]
    assert {row.find_all("td")[0].text for row in shown} == {"acme"}
    assert "Findings of tenant acme" in acme.find_all("h1")[0].text
    assert "No findings stored for tenant globex" in none.find_all("main")[0].text
    assert bad.value.code == 400 and "is not a lowercase slug" in bad.value.read().decode()


@needs_chromium
def test_unknown_run_span_or_page_is_a_404_page_saying_so(server, project, tmp_path) -> None:
    _, runs = project
    assert http_status(server + "/runs/nope") == 404
    page = parse(dump_dom(server + "/runs/nope"))
    assert "Not found" in page.find_all("h1")[0].text
    assert "no run 'nope'" in page.find_all("p", cls="message")[0].text
    assert http_status(f"{server}/runs/{runs['completed']}/spans/ffff") == 404
    assert f"run {runs['completed']} has no span 'ffff'" in parse(dump_dom(
        f"{server}/runs/{runs['completed']}/spans/ffff")).text
    assert http_status(server + "/no/such/page") == 404
    assert "there is no page at /no/such/page" in parse(dump_dom(server + "/no/such/page")).text
    image = screenshot(server + "/runs/nope", tmp_path / "404.png", size=(1000, 500))
    assert count_near(image, RED) > 100, "the message is red"


def test_pages_use_only_the_vendored_htmx(server) -> None:
    import urllib.request

    html = urllib.request.urlopen(server + "/").read().decode()
    sources = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert sources == ["/static/htmx-4.0.1.min.js"]
    script = urllib.request.urlopen(server + sources[0]).read().decode()
    assert script.startswith("var htmx=") and len(script) > 30_000
    assert "http" not in "".join(re.findall(r'(?:href|src)="([^"]+)"', html)), "nothing from another host"


def test_server_listens_on_loopback_only(server) -> None:
    """The kernel's table of listening sockets: the UI's port is bound to 127.0.0.1 and nothing else."""
    port = int(server.rsplit(":", 1)[1])
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        pytest.skip("no /proc/net/tcp on this OS")
    listening = []
    for table in tables:
        for line in table.read_text().splitlines()[1:] if table.exists() else []:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                listening.append(address)
    assert listening == ["0100007F"], f"port {port} listens on {listening} (0100007F is 127.0.0.1)"


def test_port_in_use_and_missing_project_exit_2(project, tmp_path) -> None:
    repo, _ = project
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = aigentflow("ui", "--no-open", "--port", str(port), cwd=repo, timeout=60)
    assert done.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in done.stderr, done.stderr
    missing = aigentflow("ui", "--no-open", "--project", str(tmp_path / "nowhere"), cwd=tmp_path, timeout=60)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    plain = commit_files(tmp_path / "plain", {"README.md": "hi\n"})
    done = aigentflow("ui", "--no-open", "--port", "0", cwd=plain, timeout=60)
    assert done.returncode == 2 and "aigentflow init" in done.stderr
    assert not (plain / ".aigentflow").exists(), "nothing created"


def test_ui_pages_import_neither_ray_nor_litellm(project) -> None:
    repo, runs = project
    code = f"""
import sys
from fastapi.testclient import TestClient
from aigentflow.project.paths import ProjectPaths
from evolution.ui.app import create_app
client = TestClient(create_app(ProjectPaths(__import__('pathlib').Path({str(repo)!r}))))
codes = [client.get(p).status_code for p in ('/', '/runs/{runs['completed']}', '/findings')]
print(json.dumps([codes, 'ray' in sys.modules, 'litellm' in sys.modules]))
""".replace("import sys", "import sys, json", 1)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [[200, 200, 200], False, False]


@needs_chromium
def test_leaderboard_page_shows_ratings_promotion_and_the_rollout_stage(tmp_path: Path) -> None:
    from evolution.tournament.store import ratings
    from tests.test_canary import ROLE, add_version, approve_promotion

    with user_config_env(tmp_path / "user-config"):
        repo = new_project(tmp_path / "rated")
    add_version(repo, "1.2.0", layer=None)
    approve_promotion(repo, "1.2.0")
    assert aigentflow("config", "set", "flags.evolution.shadowModeFirst", "true", cwd=repo).returncode == 0
    assert aigentflow("canary", "advance", ROLE, cwd=repo).returncode == 0
    stored = ratings(repo, ROLE)
    with ui_server(repo) as url:
        home = parse(dump_dom(url + "/"))
        page = parse(dump_dom(url + "/leaderboard"))
        image = screenshot(url + "/leaderboard", tmp_path / "leaderboard.png")
    assert home.by_id("nav-leaderboard").attrs["href"] == "/leaderboard"
    assert page.find_all("main")[0].text.startswith("Leaderboard")
    assert page.by_id(f"stage-{ROLE}").text == "1.2.0 in shadow mode beside 1.0.0"
    rows = page.by_id(f"leaderboard-{ROLE}").find_all("tbody")[0].find_all("tr")
    assert [row.attrs["data-version"] for row in rows] == [r["version"] for r in stored] == ["1.2.0", "1.0.0"]
    for row, rating in zip(rows, stored, strict=True):
        cells = [td.text for td in row.find_all("td")]
        assert cells[:4] == [rating["version"], f"{rating['mu']:.2f}", f"{rating['sigma']:.2f}",
                             f"{rating['conservative']:.2f}"]
        assert cells[4] == f"{rating['ci95'][0]:.1f} .. {rating['ci95'][1]:.1f}"
        assert cells[5:7] == [str(rating["matches"]), str(rating["wins"])]
    assert [row.find_all("td")[-1].text for row in rows] == ["canary", "-"], "the promotion, as recorded"
    assert not_blank(image)
    assert count_near(image, AGENT_BAR) > 200, "the stage badge is drawn in the in-progress blue"


@needs_chromium
def test_leaderboard_page_before_any_tournament_says_how_to_play_one(server) -> None:
    text = parse(dump_dom(server + "/leaderboard")).find_all("main")[0].text
    assert "No rated versions yet" in text and "aigentflow tournament run --role ROLE" in text


BANNER = (255, 243, 205)  # .emergency's background in app.css


@needs_chromium
def test_enterprise_dashboard_and_the_emergency_banner_as_drawn(tmp_path: Path) -> None:
    with user_config_env(tmp_path / "user-config"):
        repo = new_project(tmp_path / "project")
        assert aigentflow("gdpr", "export", "bob@example.com", cwd=repo).returncode == 0
        assert aigentflow("admin", "emergency", "--single-tenant-mode", cwd=repo).returncode == 0
        with ui_server(repo) as url:
            page = parse(dump_dom(url + "/dashboards"))
            section = page.by_id("phase-enterprise")
            assert section.find_all("h2")[0].text == "Enterprise dashboard"
            cards = {c.attrs["id"].removeprefix("figure-"): c for c in section.find_all("div", cls="figure")}
            assert [c.find_all(cls="figure-title")[0].text for c in cards.values()] == [
                "Tenant isolation score", "DSAR completion time", "Compliance score", "Model cost tracking accuracy",
                "Feature flag evaluation latency"]
            assert "status-ok" in cards["dsar_completion_days"].classes and "target < 30 days" in \
                cards["dsar_completion_days"].text
            assert "status-ok" in cards["flag_eval_latency_p99"].classes
            assert re.fullmatch(r"\d+ µs|\d+\.\d\d ms", cards["flag_eval_latency_p99"].find_all(
                cls="figure-value")[0].text)
            assert "status-no-data" in cards["cost_tracking_accuracy"].classes
            banner = page.by_id("emergency-switches")
            assert "single-tenant-mode is ON" in banner.text and "--multi-tenant-mode" in banner.text

            image = screenshot(url + "/dashboards", tmp_path / "enterprise.png", size=(1400, 2200))
            assert not_blank(image)
            assert count_near(image, BANNER, (0, 0, image.width, 200), tolerance=4) > 0.5 * image.width * 30, \
                "the banner under the header"
            assert count_near(image, GREEN, tolerance=8) > 500

            assert aigentflow("admin", "emergency", "--multi-tenant-mode", cwd=repo).returncode == 0
            image = screenshot(url + "/dashboards", tmp_path / "lifted.png")
            assert count_near(image, BANNER, tolerance=4) < 100, "no banner once lifted"
