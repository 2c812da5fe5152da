"""Skill packs as a user meets them: SKILL.md folders on disk, `aigentflow skills` on the command line,
and the picks an agent's prompt would carry. No Ray: skills are plain files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigentflow.skills import (
    BUILTIN_DIR,
    LAYER_HEADER,
    MAX_SKILL_FILE_BYTES,
    Selection,
    Skill,
    SkillError,
    discover,
    parse_skill,
    render_layer,
    select,
    terms,
)
from tests.conftest import aigentflow

BUILTIN_PACKS = ("changelog", "javascript-testing", "python-testing", "security-review")


def write_skill(base: Path, folder: str, front: str | None = None, body: str = "Do the thing.\n", *,
                raw: bytes | None = None) -> Path:
    """A skill folder ``base/folder`` whose SKILL.md is ``raw``, or front matter ``front`` and ``body``."""
    skill = base / folder
    skill.mkdir(parents=True, exist_ok=True)
    if raw is None:
        front = front if front is not None else f"name: {folder}\ndescription: A skill called {folder}.\n"
        raw = f"---\n{front}---\n{body}".encode()
    (skill / "SKILL.md").write_bytes(raw)
    return skill


def project_skills(repo: Path) -> Path:
    return repo / ".aigentflow" / "skills"


def test_every_builtin_pack_validates() -> None:
    found = sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "SKILL.md").is_file())
    assert set(BUILTIN_PACKS) <= set(found)
    for name in found:
        skill = parse_skill(BUILTIN_DIR / name, "built-in")
        assert skill.name == name and skill.source == "built-in"
        assert skill.warnings == (), (name, skill.warnings)
        assert 30 <= len(skill.body.splitlines()) <= 80, name
    assert parse_skill(BUILTIN_DIR / "python-testing", "built-in").references == ("references/pytest-patterns.md",)
    assert parse_skill(BUILTIN_DIR / "security-review", "built-in").references == ("references/checklist.md",)


def test_validate_command_passes_the_builtin_packs(tmp_path: Path, user_config: Path) -> None:
    result = aigentflow("skills", "validate", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in BUILTIN_PACKS:
        assert f"ok: {name} (built-in)" in result.stdout
    assert "0 malformed" in result.stdout
    report = json.loads(aigentflow("skills", "validate", str(BUILTIN_DIR), "--json", cwd=tmp_path).stdout)
    assert report["ok"] and report["problems"] == []
    assert {s["name"] for s in report["skills"]} >= set(BUILTIN_PACKS)


def test_project_shadows_user_which_shadows_builtin(sample_repo: Path, user_config: Path, tmp_path: Path) -> None:
    write_skill(user_config / "skills", "python-testing", body="The user's own pytest rules.\n")
    write_skill(user_config / "skills", "changelog", body="The user's changelog rules.\n")
    write_skill(project_skills(sample_repo), "python-testing", body="This project's pytest rules.\n")
    write_skill(project_skills(sample_repo), "release-notes")

    listed = aigentflow("skills", "list", "--json", cwd=sample_repo / "src")
    assert listed.returncode == 0, listed.stderr
    catalog = json.loads(listed.stdout)
    winners = {s["name"]: s["source"] for s in catalog["skills"]}
    assert winners["python-testing"] == "project" and winners["changelog"] == "user"
    assert winners["release-notes"] == "project" and winners["security-review"] == "built-in"
    shadowed = sorted((s["name"], s["source"], s["shadowed_by"]) for s in catalog["shadowed"])
    assert shadowed == [("changelog", "built-in", "user"), ("python-testing", "built-in", "project"),
                        ("python-testing", "user", "project")]
    assert catalog["problems"] == []

    text = aigentflow("skills", "list", cwd=sample_repo)
    assert text.returncode == 0 and "release-notes" in text.stdout
    assert "shadowed: python-testing (user," in text.stdout and "hidden by the project one" in text.stdout

    shown = aigentflow("skills", "show", "python-testing", cwd=sample_repo)
    assert shown.returncode == 0 and "python-testing (project)" in shown.stdout
    assert "This project's pytest rules." in shown.stdout and "shadows: the user one" in shown.stdout

    outside = tmp_path / "not-a-project"
    outside.mkdir()
    elsewhere = json.loads(aigentflow("skills", "list", "--json", cwd=outside).stdout)
    assert {s["name"]: s["source"] for s in elsewhere["skills"]}["python-testing"] == "user"
    assert "release-notes" not in {s["name"] for s in elsewhere["skills"]}


MALFORMED = {
    # folder: (SKILL.md bytes, what the report must say)
    "no-front-matter": (b"# Just instructions\n\nNo front matter here.\n", "has no front matter"),
    "bad-yaml": (b"---\nname: bad-yaml\ndescription: Use when: things break\n---\nBody.\n",
                 "front matter is not valid YAML (line 3)"),
    "folder-name": (b"---\nname: other-name\ndescription: Mismatched.\n---\nBody.\n",
                    "name 'other-name' does not match its folder 'folder-name'"),
    "Upper-Case": (b"---\nname: Upper-Case\ndescription: Shouting.\n---\nBody.\n",
                   "name 'Upper-Case' has uppercase letters"),
    "no-description": (b"---\nname: no-description\n---\nBody.\n", "front matter has no description"),
    "long-description": (b"---\nname: long-description\ndescription: " + b"x" * 1025 + b"\n---\nBody.\n",
                         "description is 1025 characters long; the limit is 1024"),
    "latin-1": (b"---\nname: latin-1\ndescription: Caf\xe9 menus.\n---\nBody.\n", "is not UTF-8 text"),
}


def test_malformed_skills_are_reported_by_validate_and_skipped_by_list(sample_repo: Path) -> None:
    skills_dir = project_skills(sample_repo)
    for folder, (raw, _) in MALFORMED.items():
        write_skill(skills_dir, folder, raw=raw)
    write_skill(skills_dir, "good-one", "name: good-one\ndescription: Fine.\nmodel: opus\n")

    validated = aigentflow("skills", "validate", cwd=sample_repo)
    assert validated.returncode == 1, validated.stdout + validated.stderr
    for folder, (_, problem) in MALFORMED.items():
        line = next((ln for ln in validated.stdout.splitlines() if ln.startswith(f"{skills_dir / folder}/SKILL.md: ")),
                    None)
        assert line is not None and problem in line, (folder, validated.stdout)
    assert f"{skills_dir / 'good-one'}/SKILL.md: warning: unknown front-matter key 'model'" in validated.stdout
    assert "ok: good-one (project)" in validated.stdout

    listed = aigentflow("skills", "list", cwd=sample_repo)
    assert listed.returncode == 0, listed.stderr
    assert "good-one" in listed.stdout
    assert f"{len(MALFORMED)} malformed skills skipped; run `aigentflow skills validate`" in listed.stdout
    catalog = json.loads(aigentflow("skills", "list", "--json", cwd=sample_repo).stdout)
    assert {s["name"] for s in catalog["skills"]} == {"good-one", *BUILTIN_PACKS}
    assert len(catalog["problems"]) == len(MALFORMED)

    one = aigentflow("skills", "validate", str(skills_dir / "Upper-Case"), "--json", cwd=sample_repo)
    assert one.returncode == 1 and json.loads(one.stdout)["problems"][0]["problem"].startswith("name 'Upper-Case'")
    good = aigentflow("skills", "validate", str(skills_dir / "good-one" / "SKILL.md"), cwd=sample_repo)
    assert good.returncode == 0 and "ok: good-one (project)" in good.stdout


def test_show_of_an_unknown_name_exits_2_and_lists_the_names(sample_repo: Path) -> None:
    write_skill(project_skills(sample_repo), "broken", raw=b"no front matter")
    unknown = aigentflow("skills", "show", "pytset", cwd=sample_repo)
    assert unknown.returncode == 2
    assert "no skill named 'pytset'" in unknown.stderr
    assert all(name in unknown.stderr for name in BUILTIN_PACKS)
    broken = aigentflow("skills", "show", "broken", cwd=sample_repo)
    assert broken.returncode == 2 and "malformed" in broken.stderr and "has no front matter" in broken.stderr
    shown = json.loads(aigentflow("skills", "show", "security-review", "--json", cwd=sample_repo).stdout)
    assert shown["source"] == "built-in" and shown["references"] == ["references/checklist.md"]
    assert "path traversal" in shown["body"].lower()


def test_skills_commands_never_import_ray_or_litellm(tmp_path: Path, user_config: Path) -> None:
    for command in (["skills", "list"], ["skills", "validate"], ["skills", "show", "changelog"]):
        probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", *command],
                               cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
        assert probe.returncode == 0, probe.stderr[-2000:]
        modules = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
        assert "aigentflow.skills" in modules
        assert not modules & {"ray", "litellm", "pydantic"}, command
    code = ("import sys, aigentflow.skills; "
            "print([m for m in ('yaml', 'ray', 'litellm', 'pydantic') if m in sys.modules])")
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "[]"


@pytest.mark.parametrize(("raw", "problem"), [
    (b"---\nname: x\ndescription: d\n", "front matter is not closed"),
    (b"---\n---\nBody\n", "front matter is empty"),
    (b"---\n- name\n- description\n---\n", "must be a mapping"),
    (b"---\nname: 12\ndescription: d\n---\n", "name must be a string, not a number"),
    (b"---\nname: ok\ndescription: d\nallowed-tools: 3\n---\n", "allowed-tools must be"),
    (b"---\nname: ok\ndescription: d\nmetadata: [a, b]\n---\n", "metadata must be a mapping"),
    (b"---\nname: ok\ndescription: d\ncompatibility: " + b"c" * 501 + b"\n---\n", "compatibility is 501"),
    (b"---\nname: ok\ndescription: '   '\n---\n", "description is empty"),
])
def test_parse_errors_name_the_file_and_the_problem(tmp_path: Path, raw: bytes, problem: str) -> None:
    folder = write_skill(tmp_path, "ok", raw=raw)
    with pytest.raises(SkillError) as caught:
        parse_skill(folder, "project")
    assert caught.value.path == str(folder / "SKILL.md") and problem in caught.value.problem
    assert str(caught.value).startswith(f"{folder / 'SKILL.md'}: ")


def test_names_must_follow_the_format(tmp_path: Path) -> None:
    for name in ("-lead", "trail-", "two--hyphens", "under_score", "a" * 65):
        folder = write_skill(tmp_path, name, f"name: {name}\ndescription: d\n")
        with pytest.raises(SkillError, match="name"):
            parse_skill(folder, "user")
    assert parse_skill(write_skill(tmp_path, "a" * 64), "user").name == "a" * 64


def test_missing_oversized_and_escaping_files_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "skill.md").write_text("---\nname: empty\ndescription: d\n---\n")
    with pytest.raises(SkillError, match=r"missing: .*rename skill.md to SKILL.md"):
        parse_skill(empty, "project")

    big = write_skill(tmp_path, "big", body="x" * MAX_SKILL_FILE_BYTES)
    with pytest.raises(SkillError, match="larger than 256 KB"):
        parse_skill(big, "project")

    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    leaky = write_skill(tmp_path, "leaky")
    (leaky / "references").mkdir()
    os.symlink(secret, leaky / "references" / "notes.md")
    with pytest.raises(SkillError, match="outside the skill folder") as caught:
        parse_skill(leaky, "project")
    assert caught.value.path == str(leaky / "references" / "notes.md")

    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(tmp_path / "big" / "SKILL.md", linked / "SKILL.md")
    with pytest.raises(SkillError, match=r"symlink to .*outside the skill folder"):
        parse_skill(linked, "project")


def test_optional_fields_files_and_warnings(tmp_path: Path) -> None:
    folder = write_skill(tmp_path, "full", (
        "name: full\n"
        "description: >\n  Folded\n  description.\n"
        "allowed-tools: Read Grep Bash(git add:*)\n"
        "license: MIT\n"
        "compatibility: Python 3.11+\n"
        "metadata:\n  author: me\n  version: 1.0\n"
        "model: opus\n"
    ), body="\nStep one.\n")
    (folder / "scripts").mkdir()
    (folder / "scripts" / "check.py").write_text("print('ok')\n")
    (folder / "references" / "deep").mkdir(parents=True)
    (folder / "references" / "deep" / "notes.md").write_text("notes\n")
    (folder / "references" / ".hidden").write_text("x")
    skill = parse_skill(folder, "user")
    assert skill.description == "Folded description." and skill.body == "Step one."
    assert skill.allowed_tools == ("Read", "Grep", "Bash(git add:*)")
    assert skill.license == "MIT" and skill.compatibility == "Python 3.11+"
    assert skill.metadata == {"author": "me", "version": "1.0"}
    assert skill.scripts == ("scripts/check.py",) and skill.references == ("references/deep/notes.md",)
    assert any("'model'" in w for w in skill.warnings) and any("'version'" in w for w in skill.warnings)
    listed = write_skill(tmp_path, "listed", "name: listed\ndescription: d\nallowed-tools: [Read, Write]\n")
    assert parse_skill(listed, "user").allowed_tools == ("Read", "Write")
    assert hash(skill) == hash(parse_skill(folder, "user"))


def test_discover_skips_bad_skills_and_missing_dirs(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write_skill(project_skills(root), "ok-skill")
    write_skill(project_skills(root), "bad-skill", raw=b"nothing")
    write_skill(project_skills(root), ".hidden", raw=b"nothing")
    (project_skills(root) / "README.md").write_text("not a skill")
    catalog = discover(root, user_dir=tmp_path / "no-such-dir")
    assert set(catalog.skills) == {"ok-skill", *BUILTIN_PACKS}
    assert [p.path for p in catalog.problems] == [str(project_skills(root) / "bad-skill" / "SKILL.md")]
    assert discover(None, user_dir=tmp_path / "nothing").problems == []


def test_select_picks_relevant_skills_deterministically() -> None:
    catalog = discover(None, user_dir=Path("/nonexistent"))
    picks = select(catalog, "Write pytest tests for the due-date parser")
    assert picks and picks[0].skill.name == "python-testing"
    assert {"pytest", "test"} <= set(picks[0].matched) and picks[0].score >= 3
    assert select(catalog, "Update the logo colour") == []
    # a Python test task: the JavaScript testing skill shares only "test" with it
    assert [p.skill.name for p in select(catalog, "tester: tests for the parser\npython pytest")] == ["python-testing"]
    assert [p.skill.name for p in select(catalog, "Review the upload endpoint for path traversal and SSRF")] == [
        "security-review"]
    assert select(catalog, "Prepare the 2.0 release: changelog entries")[0].skill.name == "changelog"
    assert select(catalog, "Write pytest tests", limit=0) == []
    assert select(catalog, "Write pytest tests for the parser") == select(catalog, "Write pytest tests for the parser")
    assert terms("tests testing tested test") == frozenset({"test"})
    assert terms("The fixtures and a fixture") == frozenset({"fixtur"})


def test_select_scores_name_terms_double_and_breaks_ties_by_name(tmp_path: Path) -> None:
    skills = [
        Skill(name="zeta-docs", description="Docs.", body="", path=tmp_path, source="project"),
        Skill(name="alpha-docs", description="Docs.", body="", path=tmp_path, source="project"),
        Skill(name="tables", description="Render tables and charts in reports.", body="", path=tmp_path,
              source="user"),
    ]
    picks = select(skills, "docs for the reports", min_terms=1)
    assert [(p.skill.name, p.score, p.matched) for p in picks] == [
        ("alpha-docs", 2, ("doc",)), ("zeta-docs", 2, ("doc",))]
    assert select(skills, "docs for the reports") == []  # one term, even of the name, is not two reasons
    assert select(skills, "charts in reports")[0].score == 2  # two description terms, one point each
    assert select(skills, "charts", min_score=1, min_terms=1)[0].skill.name == "tables"
    assert len(select(skills, "docs", limit=1, min_terms=1)) == 1


def test_render_layer_carries_the_skills_and_truncates_long_bodies(tmp_path: Path) -> None:
    assert render_layer([]) == ""
    python = parse_skill(BUILTIN_DIR / "python-testing", "built-in")
    layer = render_layer([Selection(python, 4, ("pytest", "test"))])
    assert layer.startswith(LAYER_HEADER)
    assert "Skills picked for this task; follow their instructions where they apply" in layer
    assert "## Skill: python-testing" in layer and python.description in layer and python.body in layer
    assert "references/pytest-patterns.md" in layer and "class FakeMailer" not in layer
    assert "truncated" not in layer

    long_body = "\n".join(f"line {i}: " + "x" * 80 for i in range(500))
    huge = Skill(name="huge", description="A huge skill.", body=long_body, path=tmp_path, source="project")
    small = Skill(name="small", description="A small skill.", body="Keep me whole.", path=tmp_path, source="user")
    layer = render_layer([Selection(huge, 3, ()), Selection(small, 2, ())], max_chars=4000)
    assert len(layer) <= 4000
    assert "## Skill: huge" in layer and "## Skill: small" in layer and "Keep me whole." in layer
    assert "line 0: " in layer and "line 499" not in layer
    assert "[... truncated: " in layer and "characters of this skill's instructions are left out" in layer
    assert len(render_layer([Selection(huge, 3, ())], max_chars=200)) <= 200


def test_a_cut_inside_a_code_block_closes_it(tmp_path: Path) -> None:
    code = "```python\n" + "\n".join(f"value_{i} = {i}" for i in range(400)) + "\n```\n\nAfter the code."
    skill = Skill(name="code", description="Code.", body=code, path=tmp_path, source="project")
    layer = render_layer([Selection(skill, 2, ())], max_chars=1500)
    assert len(layer) <= 1500 and layer.count("```") % 2 == 0
    assert layer.rstrip().endswith("to keep the prompt short]") and "After the code." not in layer


def test_project_context_counts_only_for_a_skill_the_task_itself_touches() -> None:
    catalog = discover(None, user_dir=Path("/nonexistent"))
    python_project = "python pytest"
    assert [p.skill.name for p in select(catalog, "tester: tests for the parser", context=python_project)] == [
        "python-testing"]
    assert select(catalog, "architect: decide where the due dates are stored", context=python_project) == []
    assert [p.skill.name for p in select(catalog, "tester: tests for the parser", context="javascript npm node")] == [
        "javascript-testing"]
