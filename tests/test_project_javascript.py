"""`aigentflow init` on JavaScript projects laid out as real packages are (minimist, ms, yargs-parser,
defu, camelcase...): the test files counted, the runner known from package.json, the test command."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from aigentflow.project.facts import detect_project
from tests.conftest import aigentflow, commit_files

TAPE_TEST = "var test = require('tape');\ntest('parses', function (t) { t.end(); });\n"
NODE_TEST = "const test = require('node:test');\nconst assert = require('node:assert');\n" \
            "test('{name}', () => assert.equal(1 + 1, 2));\n"


def package(**fields: object) -> str:
    return json.dumps({"name": "pkg", "version": "1.0.0", **fields}, indent=2)


LAYOUTS = {
    # minimist 1.2.8: `npm test` runs `npm run tests-only`, which runs tape under nyc
    "minimist-tape": ({
        "package.json": package(main="index.js", scripts={
            "lint": "eslint --ext=js,mjs .", "pretest": "npm run lint", "tests-only": "nyc tape 'test/**/*.js'",
            "test": "npm run tests-only", "posttest": "aud --production"},
            devDependencies={"nyc": "^10.3.2", "tape": "^5.6.3", "eslint": "=8.8.0"}),
        "index.js": "module.exports = function () {};\n",
        "test/bool.js": TAPE_TEST, "test/dash.js": TAPE_TEST, "test/parse.js": TAPE_TEST,
        "example/parse.js": "console.log(require('../')(process.argv.slice(2)));\n",
    }, "tape", "npm test", "package.json scripts.test, runs tape", 3),
    # ms 2.1.3: one tests.js at the root, run by mocha
    "ms-mocha": ({
        "package.json": package(main="./index", scripts={"test": "mocha tests.js"},
                                devDependencies={"mocha": "4.0.1", "expect.js": "0.3.1"}),
        "index.js": "module.exports = function () {};\n", "tests.js": "describe('ms', () => {});\n",
    }, "mocha", "npm test", "package.json scripts.test, runs mocha", 1),
    # yargs-parser 21: mocha under c8 on test/*.cjs; fixtures and helpers are not tests
    "yargs-parser-mocha": ({
        "package.json": package(scripts={"test": "c8 --reporter=text --reporter=html mocha test/*.cjs"},
                                devDependencies={"c8": "^7.3.0", "chai": "^4.2.0", "mocha": "^10.0.0"}),
        "build/lib/index.js": "export default {};\n", "test/yargs-parser.cjs": "describe('p', () => {});\n",
        "test/tokenize-arg-string.cjs": "describe('t', () => {});\n",
        "test/fixtures/config.js": "module.exports = {};\n",
        "test/_helpers.js": "module.exports = {};\n", "test/types.d.ts": "export {};\n",
    }, "mocha", "npm test", "package.json scripts.test, runs mocha", 2),
    # a jest project: __tests__ folders and *.test.ts files
    "jest": ({
        "package.json": package(scripts={"test": "jest --coverage"}, devDependencies={"jest": "^29.7.0"}),
        "src/sum.js": "module.exports = (a, b) => a + b;\n", "src/__tests__/sum.js": "test('s', () => {});\n",
        "src/sum.test.ts": "test('s', () => {});\n", "src/sum.spec.mjs": "test('s', () => {});\n",
    }, "jest", "npm test", "package.json scripts.test, runs jest", 3),
    # defu 6: pnpm, `pnpm lint && pnpm vitest run`
    "defu-vitest": ({
        "package.json": package(scripts={"lint": "eslint .", "test": "pnpm lint && pnpm vitest run"},
                                devDependencies={"vitest": "^1.0.0", "eslint": "^8.0.0"}),
        "pnpm-lock.yaml": "lockfileVersion: '6.0'\n", "src/defu.ts": "export const defu = {};\n",
        "test/defu.test.ts": "import { it } from 'vitest';\nit('merges', () => {});\n",
    }, "vitest", "pnpm test", "package.json scripts.test, runs vitest", 1),
    # camelcase 8: `xo && ava && tsd`, test.js at the root
    "camelcase-ava": ({
        "package.json": package(type="module", scripts={"test": "xo && ava && tsd"},
                                devDependencies={"ava": "^5.3.1", "tsd": "^0.28.1", "xo": "^0.56.0"}),
        "index.js": "export default function camelCase() {}\n", "test.js": "import test from 'ava';\n",
    }, "ava", "npm test", "package.json scripts.test, runs ava", 1),
    "node-test": ({
        "package.json": package(scripts={"test": "node --test-reporter=spec --test"}),
        "lib/index.js": "module.exports = {};\n", "test/a.test.js": NODE_TEST.format(name="a"),
        "test/unit/b.js": NODE_TEST.format(name="b"),
    }, "node:test", "npm test", "package.json scripts.test, runs node:test", 2),
    # no scripts.test: the runner in devDependencies is run directly
    "mocha-no-script": ({
        "package.json": package(devDependencies={"mocha": "^10.0.0"}),
        "index.js": "module.exports = 1;\n", "tests/index.js": "describe('i', () => {});\n",
    }, "mocha", "npx mocha --recursive tests", "package.json devDependencies (mocha)", 1),
    "tape-no-script": ({
        "package.json": package(scripts={"test": 'echo "Error: no test specified" && exit 1'},
                                devDependencies={"tape": "^5.0.0"}),
        "index.js": "module.exports = 1;\n", "test/index.js": TAPE_TEST,
    }, "tape", "npx tape 'test/**/*.js'", "package.json devDependencies (tape)", 1),
    "no-runner": ({
        "package.json": package(scripts={"test": 'echo "Error: no test specified" && exit 1'}),
        "index.js": "module.exports = 1;\n", "lib/latest.js": "module.exports = 2;\n",
    }, None, None, None, 0),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_runner_the_command_and_the_test_files_are_known(tmp_path: Path, layout: str) -> None:
    files, runner, command, source, count = LAYOUTS[layout]
    repo = commit_files(tmp_path / layout, files)
    facts, found_source = detect_project(repo)
    assert facts.primary_language in ("JavaScript", "TypeScript")
    assert (facts.test_command, found_source, facts.test_file_count) == (command, source, count)
    assert (runner in facts.frameworks) if runner else not set(facts.frameworks)
    assert facts.has_tests == bool(count)


def test_init_shows_the_runner_and_the_recorded_command_runs_the_counted_tests(tmp_path: Path,
                                                                                 user_config: Path) -> None:
    files, *_ = LAYOUTS["node-test"]
    repo = commit_files(tmp_path / "project", {**files, "test/c.mjs": NODE_TEST.format(name="c").replace(
        "const test = require('node:test');\nconst assert = require('node:assert');",
        "import test from 'node:test';\nimport assert from 'node:assert';")})
    shown = aigentflow("init", cwd=repo)
    assert shown.returncode == 0, shown.stderr
    assert "test command:    npm test (from package.json scripts.test, runs node:test)" in shown.stdout
    facts = json.loads(aigentflow("init", "--json", cwd=repo).stdout)["facts"]
    assert facts["test_file_count"] == 3 and "node:test" in facts["frameworks"]

    ran = subprocess.run(facts["test_command"], shell=True, cwd=repo, capture_output=True, text=True, timeout=120,
                         check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    passed = re.search(r"^\S*\s*pass (\d+)", ran.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) == facts["test_file_count"], ran.stdout
