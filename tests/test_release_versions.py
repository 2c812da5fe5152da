"""`aigentflow release` on the layouts real projects have: the version they declare (pyproject.toml,
setup.cfg, package.json, ``__version__``) or tag, commits that are not conventional, and declared
versions that are not versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import aigentflow, commit_files
from tests.conftest import git as sh


def make_project(root: Path, files: dict[str, str], subjects: tuple[str, ...] = ("Add a feature",),
                 tags: tuple[str, ...] = ()) -> Path:
    """``files`` committed as "Initial import" (tagged with ``tags``), then one commit per subject;
    initialised with `aigentflow init`."""
    commit_files(root, files)
    for tag in tags:
        sh(root, "tag", "-a", "-m", tag, tag)
    for subject in subjects:
        sh(root, "commit", "-q", "--allow-empty", "-m", subject)
    initialised = aigentflow("init", cwd=root)
    assert initialised.returncode == 0, initialised.stderr
    return root


def dry_run(repo: Path) -> dict:
    result = aigentflow("release", "--dry-run", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


PYPROJECT = '[project]\nname = "{name}"\nversion = "{version}"\nrequires-python = ">=3.10"\n'
FLIT_DYNAMIC = ('[build-system]\nrequires = ["flit_core>=3.2,<4"]\nbuild-backend = "flit_core.buildapi"\n\n'
                '[project]\nname = "more-itertools"\ndynamic = ["version", "description"]\n')


@pytest.mark.parametrize(("files", "expected", "based_on"), [
    ({"pyproject.toml": PYPROJECT.format(name="demo", version="2.5.0")}, "2.6.0",
     "from pyproject.toml version 2.5.0, no release tag yet"),
    # more-itertools 10.5.0: flit, a dynamic version, `__version__` in the flat package
    ({"pyproject.toml": FLIT_DYNAMIC, "more_itertools/__init__.py": "from .more import *\n\n__version__ = '10.5.0'\n",
      "more_itertools/more.py": "", "tests/__init__.py": "__version__ = '0.0.1'\n"}, "10.6.0",
     "from more_itertools/__init__.py __version__ 10.5.0, no release tag yet"),
    # python-slugify 9.2.0: setup.py reads slugify/__version__.py
    ({"setup.py": "about = {}\nexec(open('slugify/__version__.py').read(), about)\n",
      "slugify/__init__.py": "from .slugify import *\n", "slugify/__version__.py": "__version__ = '9.2.0'\n"},
     "9.3.0", "from slugify/__version__.py __version__ 9.2.0, no release tag yet"),
    ({"setup.cfg": "[metadata]\nname = pkg\nversion = attr: pkg.__version__\n",
      "src/pkg/__init__.py": '__version__: str = "1.4"\n'}, "1.5.0",
     "from src/pkg/__init__.py __version__ 1.4, no release tag yet"),
    ({"pyproject.toml": '[tool.poetry]\nname = "p"\nversion = "0.9.1"\n'}, "0.10.0",
     "from pyproject.toml tool.poetry version 0.9.1, no release tag yet"),
    ({"package.json": '{"name": "web", "version": "3.1.4"}'}, "3.2.0",
     "from package.json version 3.1.4, no release tag yet"),
    ({"pyproject.toml": PYPROJECT.format(name="demo", version="10.5")}, "10.6.0",
     "from pyproject.toml version 10.5, no release tag yet"),
    # a pre-release is followed by its release; a dev version by the release it leads to
    ({"pyproject.toml": PYPROJECT.format(name="demo", version="1.0.0rc1")}, "1.0.0",
     "from pyproject.toml version 1.0.0rc1, no release tag yet"),
    ({"pyproject.toml": PYPROJECT.format(name="demo", version="2.6.0.dev0")}, "2.6.0",
     "from pyproject.toml version 2.6.0.dev0, no release tag yet"),
    ({"README.md": "no version anywhere\n"}, "0.1.0",
     "first release: no release tag and no declared version, so 0.1.0"),
], ids=["pyproject", "flit-dunder", "slugify", "setup-cfg-attr", "poetry", "package-json", "two-part", "rc", "dev",
        "none"])
def test_the_next_version_starts_from_the_declared_one(tmp_path: Path, user_config: Path, files: dict[str, str],
                                                      expected: str, based_on: str) -> None:
    repo = make_project(tmp_path / "project", files)
    report = dry_run(repo)
    assert (report["version"], report["tag"], report["based_on"]["text"]) == (expected, f"v{expected}", based_on)
    text = aigentflow("release", "--dry-run", cwd=repo)
    assert text.returncode == 0 and f"Would release v{expected} on main ({based_on}; 2 commits)" in text.stdout
    assert sh(repo, "tag", "-l") == "" and not (repo / "CHANGELOG.md").exists()


def test_a_tag_and_a_declared_version_the_higher_one_wins(tmp_path: Path, user_config: Path) -> None:
    # tomli 2.x: a src/ layout, the version in pyproject.toml and in __init__.py, tags without "v"
    files = {"pyproject.toml": PYPROJECT.format(name="tomli", version="2.0.1"),
             "src/tomli/__init__.py": '__version__ = "2.0.1"\n'}
    ahead = make_project(tmp_path / "ahead", files, ("Fix a crash",), tags=("2.0.0",))
    report = dry_run(ahead)
    assert report["version"] == "2.0.2" and report["previous_tag"] == "2.0.0"
    assert report["based_on"]["text"] == "from pyproject.toml version 2.0.1, higher than the latest tag 2.0.0"
    assert any("git.tag_prefix" in note for note in report["notes"])

    behind = make_project(tmp_path / "behind", files, ("Add a parser option",), tags=("v1.9.0", "v3.0.0"))
    report = dry_run(behind)
    assert report["version"] == "3.1.0" and report["based_on"]["source"] == "tag"
    assert report["based_on"]["text"] == "from tag v3.0.0 (pyproject.toml declares 2.0.1)"
    assert any("pyproject.toml still declares version 2.0.1; set it to 3.1.0" in n for n in report["notes"])
    assert len(report["changelog"].split("\n- ")) == 2  # only the commit since v3.0.0

    same = make_project(tmp_path / "same", files, ("Fix a crash",), tags=("v2.0.1",))
    assert dry_run(same)["based_on"]["text"] == "from tag v2.0.1 (pyproject.toml declares the same)"
    released = aigentflow("release", cwd=same)
    assert released.returncode == 0, released.stderr
    assert "Released v2.0.2 on main (from tag v2.0.1" in released.stdout and "Note: pyproject.toml" in released.stdout
    assert sh(same, "rev-parse", "v2.0.2^{commit}") == sh(same, "rev-parse", "main")


def test_declared_version_as_it_is_and_below_it(tmp_path: Path, user_config: Path) -> None:
    repo = make_project(tmp_path / "project", {"pyproject.toml": PYPROJECT.format(name="demo", version="2.5.0")},
                        ("Bump the copyright year",))
    nothing = aigentflow("release", cwd=repo)
    assert nothing.returncode == 2, nothing.stderr
    assert "nothing to release from pyproject.toml version 2.5.0" in nothing.stderr
    assert "--version 2.5.0 to tag the version pyproject.toml declares" in nothing.stderr
    lower = aigentflow("release", "--version", "2.4.9", cwd=repo)
    assert lower.returncode == 2 and "lower than the version pyproject.toml declares (2.5.0)" in lower.stderr
    assert sh(repo, "tag", "-l") == ""
    as_is = aigentflow("release", "--version", "2.5.0", cwd=repo)
    assert as_is.returncode == 0, as_is.stderr
    assert sh(repo, "tag", "-l") == "v2.5.0" and "## v2.5.0" in (repo / "CHANGELOG.md").read_text()
    assert "Note:" not in as_is.stdout


@pytest.mark.parametrize(("files", "named"), [
    ({"pyproject.toml": PYPROJECT.format(name="demo", version="banana")}, "pyproject.toml declares version 'banana'"),
    ({"pyproject.toml": PYPROJECT.format(name="demo", version="1!2.0")}, "pyproject.toml declares version '1!2.0'"),
    ({"setup.cfg": "[metadata]\nversion = 1.2.3.4\n"}, "setup.cfg declares version '1.2.3.4'"),
    ({"pyproject.toml": FLIT_DYNAMIC, "more_itertools/__init__.py": "__version__ = 'ten'\n"},
     "more_itertools/__init__.py declares __version__ 'ten'"),
    ({"package.json": '{"version": 3}'}, "package.json declares version 3,"),
])
def test_a_declared_version_that_is_not_one_is_refused(tmp_path: Path, user_config: Path, files: dict[str, str],
                                                       named: str) -> None:
    repo = make_project(tmp_path / "project", files)
    for args in (("release", "--dry-run"), ("release",), ("release", "--version", "9.0.0")):
        refused = aigentflow(*args, cwd=repo)
        assert refused.returncode == 2, (args, refused.stdout)
        assert named in refused.stderr and "fix it in" in refused.stderr and "Nothing was changed" in refused.stderr
    assert sh(repo, "tag", "-l") == "" and not (repo / "CHANGELOG.md").exists()
    assert sh(repo, "log", "-1", "--format=%s", "main") == "Add a feature"


def test_the_version_is_read_from_the_branch_not_the_working_tree(tmp_path: Path, user_config: Path) -> None:
    repo = make_project(tmp_path / "project", {"pyproject.toml": PYPROJECT.format(name="demo", version="2.5.0")})
    (repo / "pyproject.toml").write_text(PYPROJECT.format(name="demo", version="banana"))  # not committed
    assert dry_run(repo)["based_on"]["declared"] == {"file": "pyproject.toml", "field": "version", "value": "2.5.0",
                                                     "version": "2.5.0"}


def test_commits_that_are_not_conventional_are_grouped_by_their_first_word(tmp_path: Path,
                                                                           user_config: Path) -> None:
    subjects = ("Fix crash on empty input", "Added support for TOML 1.1", "Remove the deprecated loads() alias",
                "Speed up parsing of long strings", "Update README", "Fix typo in docs", "Bump version",
                "BUG: wrong offset in errors", "ENH: accept bytes", "Merge pull request #12 from someone/branch")
    repo = make_project(tmp_path / "project", {"pyproject.toml": PYPROJECT.format(name="demo", version="1.2.3")},
                        subjects)
    report = dry_run(repo)
    assert report["version"] == "1.3.0"  # features: minor
    changelog = report["changelog"]
    sections = {part.split("\n")[0]: part for part in changelog.split("### ")[1:]}
    assert set(sections) == {"Features", "Fixes", "Removed and deprecated", "Changes", "Documentation", "Other"}
    assert "Added support for TOML 1.1" in sections["Features"] and "- accept bytes (" in sections["Features"]
    assert "Fix crash on empty input" in sections["Fixes"] and "- wrong offset in errors (" in sections["Fixes"]
    assert "Remove the deprecated loads() alias" in sections["Removed and deprecated"]
    assert "Speed up parsing" in sections["Changes"]
    assert "Update README" in sections["Documentation"] and "Fix typo in docs" in sections["Documentation"]
    for other in ("Bump version", "Merge pull request #12", "Initial import"):
        assert other in sections["Other"]

    only_fixes = make_project(tmp_path / "fixes", {"package.json": '{"version": "0.4.0"}'},
                              ("Fixed the parser", "Improve error messages"))
    assert dry_run(only_fixes)["version"] == "0.4.1"


@pytest.mark.parametrize("subject", [
    "BREAKING: loads() no longer accepts bytes",
    "BREAKING CHANGE: loads() no longer accepts bytes",
    "feat!: loads() no longer accepts bytes",
    "fix(api)!: loads() no longer accepts bytes",
    "Change loads()\n\nBREAKING CHANGE: loads() no longer accepts bytes",
    "Change loads()\n\nBREAKING-CHANGE: loads() no longer accepts bytes",
])
def test_breaking_changes_bump_the_major_and_keep_their_text(tmp_path: Path, user_config: Path, subject: str) -> None:
    repo = make_project(tmp_path / "project", {"pyproject.toml": PYPROJECT.format(name="demo", version="2.5.0")},
                        ("Add a feature", subject))
    report = dry_run(repo)
    assert report["version"] == "3.0.0"
    breaking = report["changelog"].split("### Breaking changes\n\n")[1].split("\n\n")[0]
    assert "loads() no longer accepts bytes" in breaking and "BREAKING" not in breaking
    assert "Add a feature" not in breaking

    young = make_project(tmp_path / "young", {"pyproject.toml": PYPROJECT.format(name="demo", version="0.4.2")},
                         (subject,))
    assert dry_run(young)["version"] == "0.5.0"  # before 1.0.0 a breaking change bumps the minor


@pytest.mark.parametrize(("declared", "semver"), [
    ("2.5.0", "2.5.0"), ("10.5", "10.5.0"), ("3", "3.0.0"), ("v1.2.3", "1.2.3"), ("1.0.0rc1", "1.0.0-rc.1"),
    ("1.0.0-rc.1", "1.0.0-rc.1"), ("2.0a2", "2.0.0-alpha.2"), ("2.0.0b1", "2.0.0-beta.1"),
    ("2.6.0.dev0", "2.6.0-dev.0"), ("1.0rc1.dev3", "1.0.0-rc.1.dev.3"), ("1.0.post1", "1.0.0"),
    ("1.0+ubuntu1", "1.0.0"), ("1.0.0-alpha.beta", "1.0.0-alpha.beta"),
    ("banana", None), ("1!2.0", None), ("1.2.3.4", None), ("", None),
])
def test_declared_versions_map_to_semver(declared: str, semver: str | None) -> None:
    from aigentflow.release import Version

    mapped = Version.from_declared(declared)
    assert (str(mapped) if mapped else None) == semver


ATTRS_PYPROJECT = ('[build-system]\nrequires = ["hatchling", "hatch-vcs"]\nbuild-backend = "hatchling.build"\n\n'
                   '[project]\nname = "attrs"\ndynamic = ["version"]\n\n[tool.hatch.version]\nsource = "vcs"\n')


def test_tags_without_a_v_prefix_are_release_tags(tmp_path: Path, user_config: Path) -> None:
    # attrs: the version comes from the tags (hatch-vcs), tagged `24.2.0`, `25.1.0`: no `v`, lightweight
    repo = commit_files(tmp_path / "attrs", {"pyproject.toml": ATTRS_PYPROJECT, "src/attr/__init__.py": ""})
    sh(repo, "tag", "24.2.0")
    sh(repo, "commit", "-q", "--allow-empty", "-m", "Fix a crash in asdict")
    sh(repo, "tag", "25.1.0")
    for subject in ("feat: add a converter", "fix: a typo in the error"):
        sh(repo, "commit", "-q", "--allow-empty", "-m", subject)
    assert aigentflow("init", cwd=repo).returncode == 0
    report = dry_run(repo)
    assert (report["previous_tag"], report["version"], report["commits"]) == ("25.1.0", "25.2.0", 2)
    assert report["based_on"] == {"source": "tag", "version": "25.1.0", "tag": "25.1.0", "declared": None,
                                  "text": "from tag 25.1.0"}
    assert "Fix a crash in asdict" not in report["changelog"]  # released in 25.1.0
    assert any('git.tag_prefix ""' in note for note in report["notes"])

    assert aigentflow("config", "set", "git.tag_prefix", "", cwd=repo).returncode == 0
    released = aigentflow("release", cwd=repo)
    assert released.returncode == 0, released.stderr
    assert "Released 25.2.0 on main (from tag 25.1.0; 2 commits)" in released.stdout and "Note:" not in released.stdout
    assert sh(repo, "tag", "-l") == "24.2.0\n25.1.0\n25.2.0"
    changelog = (repo / "CHANGELOG.md").read_text()
    assert "## 25.2.0 (" in changelog and "v25.2.0" not in changelog
    sh(repo, "commit", "-q", "--allow-empty", "-m", "fix: the converter's default")
    again = dry_run(repo)
    assert (again["previous_tag"], again["version"], again["tag"]) == ("25.2.0", "25.2.1", "25.2.1")


def test_the_latest_release_tag_wins_with_or_without_v(tmp_path: Path, user_config: Path) -> None:
    # a project that dropped the `v`: v1.9.0, then 2.0.0; and one that took it up: 2.0.0, then v2.1.0
    for older, newer, bumped in (("v1.9.0", "2.0.0", "2.0.1"), ("2.0.0", "v2.1.0", "2.1.1")):
        repo = commit_files(tmp_path / older, {"README.md": "words\n"})
        sh(repo, "tag", older)
        sh(repo, "commit", "-q", "--allow-empty", "-m", "feat: a feature")
        sh(repo, "tag", "-a", "-m", newer, newer)
        sh(repo, "commit", "-q", "--allow-empty", "-m", "fix: a fix")
        assert aigentflow("init", cwd=repo).returncode == 0
        report = dry_run(repo)
        assert (report["previous_tag"], report["version"], report["commits"]) == (newer, bumped, 1)
