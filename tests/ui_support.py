"""What the UI and dashboard tests share: projects with real runs (the engine in-process, the replay
model), the `aigentflow ui` server as a subprocess, and headless Chromium (the Debian package) to
render pages to PNG and to the DOM it built, which the tests read as a person would."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DEMO_REQUEST, cli_env, make_sample_repo

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (`apt-get install -y chromium`; .ci/run does it)")
SECRET = "ghp_" + "UiC4n4ryT0k3n" * 3
"""A GitHub-token-shaped secret put in a request: no page may ever show it."""

RED = (198, 40, 40)  # --bad in app.css
GREEN = (31, 138, 59)  # --ok
AGENT_BAR = (59, 111, 216)  # --bar: agent spans
MODEL_BAR = (0, 137, 123)  # model spans
HEADER = (29, 35, 48)


class Crash(RuntimeError):
    """An agent that dies (what the engine records as "the <role> agent crashed")."""


def invoker(crash_at: str | None = None) -> Any:
    from actors import agent_class

    agents: dict = {}

    def invoke(role: str, call: Any) -> Any:
        if call.step == crash_at:
            raise Crash(f"the {role} actor died")
        agents.setdefault(role, agent_class(role)())
        return agents[role].run(call, None)

    return invoke


def drive_run(repo: Path, request: str = DEMO_REQUEST, crash_at: str | None = None, **overrides: str) -> str:
    """One run of ``request`` through the real engine in this process (no Ray); its id. A run that
    fails (an unrecorded request, a crash) is left FAILED, as `aigentflow run` leaves it."""
    from aigentflow.exceptions import RunFailure
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.run.engine import RunEngine
    from aigentflow.run.runner import create_run, engine_options

    paths = ProjectPaths(repo)
    run, spec = create_run(paths, request, {"model.name": "replay/demo", **overrides})
    engine = RunEngine(paths, run.id, invoker(crash_at), engine_options(run, spec, None))
    with suppress(RunFailure):
        engine.drive()
    return run.id


def new_project(root: Path) -> Path:
    """The demo's sample project, committed and initialised (`aigentflow init`)."""
    from aigentflow.cli.project_cmd import initialise

    repo = make_sample_repo(root)
    initialise(repo)
    return repo


@contextmanager
def user_config_env(path: Path) -> Iterator[None]:
    """An empty user config for a module-scoped fixture (the developer's own never leaks in)."""
    path.mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIGENTFLOW_CONFIG_HOME", str(path))
        yield


# -- the server -------------------------------------------------------------------------------------


@contextmanager
def ui_server(project: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`aigentflow ui --no-open --port 0` serving ``project``; yields its base URL, stops it after."""
    command = [str(Path(sys.executable).parent / "aigentflow"), "ui", "--no-open", "--port", "0",
               "--project", str(project), *args]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env or cli_env(), cwd=project)
    try:
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, f"the server said {line!r}; stderr: {server.stderr.read() if server.poll() is not None else ''}"
        url = match.group(0)
        deadline = time.time() + 30
        while time.time() < deadline:
            with suppress(OSError):
                urllib.request.urlopen(url, timeout=5).close()
                break
            time.sleep(0.1)
        yield url.rstrip("/")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# -- Chromium ---------------------------------------------------------------------------------------


def chromium(url: str, *args: str, budget_ms: int = 8000) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on ``url`` with a fresh profile; ``budget_ms`` of virtual time lets htmx finish."""
    assert CHROMIUM
    with tempfile.TemporaryDirectory(prefix="ui-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args, url],
            capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "HOME": profile},
        )


def screenshot(url: str, path: Path, size: tuple[int, int] = (1400, 1000)) -> Any:
    """The page as Chromium draws it (a PIL image, RGB)."""
    from PIL import Image

    done = chromium(url, f"--screenshot={path}", f"--window-size={size[0]},{size[1]}", "--hide-scrollbars")
    assert path.exists(), f"no screenshot of {url}: {done.stderr[-2000:]}"
    return Image.open(path).convert("RGB")


def dump_dom(url: str) -> str:
    """The DOM Chromium built for ``url`` (after its scripts and htmx requests ran)."""
    done = chromium(url, "--dump-dom")
    assert done.returncode == 0 and "<html" in done.stdout, f"no DOM for {url}: {done.stderr[-2000:]}"
    return done.stdout


def count_near(image: Any, colour: tuple[int, int, int], box: tuple[int, int, int, int] | None = None,
               tolerance: int = 24) -> int:
    """How many pixels (in ``box``) are within ``tolerance`` of ``colour`` on every channel."""
    region = image.crop(box) if box else image
    r0, g0, b0 = colour
    return sum(n for n, (r, g, b) in region.getcolors(maxcolors=1 << 24)
               if abs(r - r0) <= tolerance and abs(g - g0) <= tolerance and abs(b - b0) <= tolerance)


def not_blank(image: Any) -> bool:
    """More than a handful of colours, and no single colour covering nearly everything."""
    colours = image.getcolors(maxcolors=1 << 24)
    biggest = max(n for n, _ in colours)
    return len(colours) > 50 and biggest < 0.97 * image.width * image.height


# -- reading the DOM --------------------------------------------------------------------------------


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []
        self.parts: list[Any] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    @property
    def text(self) -> str:
        """The text a person reads in this element (scripts and styles left out), whitespace collapsed."""
        out: list[str] = []

        def walk(node: Node) -> None:
            for part in node.parts:
                if isinstance(part, Node):
                    if part.tag not in ("script", "style"):
                        walk(part)
                else:
                    out.append(part)

        walk(self)
        return " ".join(" ".join(out).split())

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Node]:
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and (cls is None or cls in child.classes) and all(
                    child.attrs.get(k.rstrip("_")) == v for k, v in attrs.items()):
                found.append(child)
            found += child.find_all(tag, cls, **attrs)
        return found

    def by_id(self, element_id: str) -> Node:
        found = self.find_all(id=element_id)
        assert found, f"no element #{element_id}"
        return found[0]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = self.current = Node("#document", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        self.current.parts.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node = self.current
        while node.parent is not None and node.tag != tag:
            node = node.parent
        if node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.parts.append(data)


def parse(dom: str) -> Node:
    builder = _Builder()
    builder.feed(dom)
    return builder.root
