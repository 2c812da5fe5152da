"""Record the cassette ``evolve generate`` replays offline on the demo project's traces.

    python -m evolution.generate.record

A RECORDING TOOL, not a model: it runs `aigentflow demo` in a temporary directory, mines its patterns, and
runs the real generation (the DSPy program, BootstrapFewShot, the same prompts) against a scripted
proposer registered as the litellm provider ``evolve-script``. The script writes, for each prompt, the
incumbent's instructions plus a section aimed at the finding and the case(s) in the prompt; it is plain
code, so the answers are the same on every recording. Each prompt's hash and answer go into
``evolution/generate/cassettes/evolve-demo.json`` (role ``evolve``, step ``propose``), which
``--model replay/evolve-demo`` answers from. Run it again whenever a prompt of the program changes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n(.*?)(?=\n\[\[ ## |\Z)", re.DOTALL)
PROVIDER = "evolve-script"
CLI = str(Path(sys.executable).parent / "aigentflow")
TARGET = Path(__file__).resolve().parent / "cassettes" / "evolve-demo.json"


def sections(text: str) -> dict[str, str]:
    """The ``[[ ## field ## ]]`` sections of a prompt, without the adapter's closing request."""
    return {name: body.split("\n\nRespond with the corresponding output fields", 1)[0].strip()
            for name, body in SECTION.findall(text)}


EVERY_LESSON = ("In every lesson you add, name the kind of step the finding is about (for example the project's test "
                "command), also when the calls in the cases were accepted.")
"""What the scripted instruction proposer (MIPROv2) and reflection (GEPA) add to the program's instructions;
the scripted proposer follows it when its system prompt carries it."""


TASK = re.compile(r"The task: (\S+) \(")
ACCEPTED: dict[str, dict[str, dict[str, str]]] = {}
"""task id -> {"accepted": files as the task's accepted work left them, "incumbent": as the incumbent's call
on that step left them}: what the scripted developer answers."""
HEEDS = "written for the task through your change"
"""The lesson (of a scripted proposal for a failed case) the scripted developer heeds when its prompt has it."""


def developer_answer(task_id: str, system: str) -> str:
    """The scripted developer (a recording tool, not a model): the task's accepted files when its
    instructions carry the lesson ``HEEDS``, else what the incumbent's call wrote (a failure where it failed)."""
    heeded = HEEDS in system
    files = ACCEPTED[task_id]["accepted" if heeded else "incumbent"]
    return json.dumps({"summary": f"Implements {task_id}{' tracing its tests first' if heeded else ''}.",
                       "commit_message": f"feat: {task_id}", "edits": [{"path": path, "content": content}
                                                                        for path, content in sorted(files.items())]})


def scripted_answer(messages: list[dict[str, Any]]) -> str:
    """The scripted answer to one prompt of the generation: a proposal (ChatAdapter's output format), an
    instruction for the program (MIPROv2's proposer, GEPA's reflection) or a critique."""
    system = str(messages[0]["content"]) if messages else ""
    last = str(messages[-1]["content"])
    if (task := TASK.search(last)) and task.group(1) in ACCEPTED and "Implement the task." in last:
        return developer_answer(task.group(1), system)
    asked = sections(last)
    if "current_instruction" in asked and "examples_with_feedback" in asked:
        return json.dumps({"new_instruction": f"{asked['current_instruction']}\n\n{EVERY_LESSON}"})
    if "basic_instruction" in asked:
        basic = asked["basic_instruction"]
        return f"[[ ## proposed_instruction ## ]]\n{basic}\n\n{EVERY_LESSON}\n\n[[ ## completed ## ]]"
    if "constitution" in asked:
        return critique_answer(asked)
    fields = asked
    finding = json.loads(fields["finding"])
    details = finding.get("details", {})
    cases = [json.loads(line) for line in fields["cases"].splitlines() if line.startswith("{")]
    failed = [c for c in cases if c["outcome"] == "failed"]
    lessons = []
    if failed:
        kind = details.get("step_kind") or "test"
        lessons.append(f"- The project's {kind} command failed after this role's work "
                       f"{finding.get('count', len(failed))} time(s) ({finding['title']}). Before you return your "
                       f"edits, trace each {kind} written for the task through your change and fix what would fail; "
                       "when a test cannot pass as written, say why in your notes instead of changing it.")
        steps = ", ".join(sorted({c["step"] for c in failed}))
        lessons.append(f"- Steps that failed before: {steps}. Read their acceptance criteria first.")
    else:
        lessons.append("- The work in these steps was accepted: keep edits small and in the project's style.")
        if EVERY_LESSON in system:
            kind = details.get("step_kind") or "test"
            lessons.append(f"- {finding['title']}: trace each {kind} written for the task through your change "
                           "before you return your edits.")
    instructions = fields["current_instructions"] + "\n\n## Lessons from past runs\n\n" + "\n".join(lessons)
    return (f"[[ ## new_instructions ## ]]\n{instructions}\n\n[[ ## skills ## ]]\n[\"python-testing\"]\n\n"
            f"[[ ## budget ## ]]\n6\n\n[[ ## summary ## ]]\nAdds lessons from {len(cases)} traced call(s)"
            f"{' with failures' if failed else ''} to the role's instructions and gives it the python-testing "
            "skill.\n\n[[ ## completed ## ]]")


def critique_answer(fields: dict[str, str]) -> str:
    """The scripted critic: it flags what the proposal adds to the current instructions when that tells the
    agent to skip or weaken work; else it finds the proposal within the constitution."""
    text = fields.get("new_instructions", "").replace(fields.get("current_instructions", ""), "").lower()
    concerns = [phrase for phrase in ("skip", "weaken", "ignore the") if phrase in text]
    return (f"[[ ## complies ## ]]\n{not concerns}\n\n[[ ## concerns ## ]]\n{json.dumps(concerns)}\n\n"
            "[[ ## reasoning ## ]]\n" + ("It keeps the constitution's rules: the new lessons add care before "
                                          "returning work and weaken no test." if not concerns else
                                          f"It asks the agent to {', '.join(concerns)}.") + "\n\n[[ ## completed ## ]]")


def register(entries: list[dict[str, Any]]) -> None:
    """Register the scripted proposer with litellm; every answer is appended to ``entries``."""
    import litellm
    from litellm import CustomLLM
    from litellm.utils import custom_llm_setup

    from aigentflow.models.spec import prompt_hash

    class ScriptedProposer(CustomLLM):
        def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,  # type: ignore[override]
                       model_response: Any, *args: Any, **kwargs: Any) -> Any:
            response = model_response
            text = scripted_answer(messages)
            role = "backend_developer" if text.startswith('{"summary"') else "evolve"
            entries.append({"role": role, "step": "regression" if role != "evolve" else "propose",
                            "attempt": len(entries) + 1,
                            "prompt_hash": prompt_hash(messages), "response": text,
                            "usage": {"input_tokens": sum(len(str(m.get("content", ""))) // 4 for m in messages),
                                      "output_tokens": len(text) // 4}})
            response.choices[0].message.content = text
            response.model = f"{PROVIDER}/{model}"
            return response

    others = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != PROVIDER]
    litellm.custom_provider_map = [*others, {"provider": PROVIDER, "custom_handler": ScriptedProposer()}]
    custom_llm_setup()


def record(target: Path = TARGET, demo: Path | None = None) -> dict[str, Any]:
    """Record into ``target``; ``demo``: an existing copy of a finished `aigentflow demo` (else one is made).
    Each optimizer runs on its own copy of the mined demo."""
    import dspy

    from aigentflow.models.spec import ModelSpec
    from aigentflow.project.paths import ProjectPaths
    from evolution.generate.generate import generate
    from evolution.generate.program import OPTIMIZERS
    from evolution.patterns.miner import mine

    entries: list[dict[str, Any]] = []
    register(entries)
    report = {}
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "base"
        if demo is not None:
            shutil.copytree(demo, base, symlinks=True)
        else:
            subprocess.run([CLI, "demo", "--dir", str(base)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([CLI, "config", "set",
                        "flags.evolution.agentGeneration", "true"], check=True, cwd=base, stdout=subprocess.DEVNULL)
        mine(base, None)
        from evolution.generate.regression import _git, build_cases

        for case in build_cases(ProjectPaths(base), "backend_developer"):
            ACCEPTED[case["task_id"]] = {
                name: {path: _git(base, "show", f"{case[f'{name}_commit']}:{path}") for path in case["files"]}
                for name in ("accepted", "incumbent")}
        for optimizer in OPTIMIZERS:
            project = Path(scratch) / optimizer
            shutil.copytree(base, project, symlinks=True)
            before = len(entries)
            evidence = generate(ProjectPaths(project), role="backend_developer", pattern=None, optimizer=optimizer,
                                lm=dspy.LM(f"{PROVIDER}/proposer", cache=False, num_retries=0, temperature=0.0),
                                role_model=ModelSpec(name=f"{PROVIDER}/proposer", max_transient_retries=0))
            report[optimizer] = {"calls": len(entries) - before, "chosen": evidence["chosen"]["source"],
                                 "score": evidence["chosen"]["score"], "seconds": evidence["seconds"]}
    unique = list({entry["prompt_hash"]: entry for entry in entries}.values())
    for number, entry in enumerate(unique, 1):
        entry["attempt"] = number
    cassette = {"version": 1, "model": f"{PROVIDER}/proposer",
                "description": "evolve generate on the demo project's traces (backend_developer), one generation "
                               f"per optimizer ({', '.join(OPTIMIZERS)}), recorded by python -m "
                               "evolution.generate.record from a scripted proposer (not a model).",
                "entries": unique}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(cassette, indent=2, ensure_ascii=False) + "\n")
    return {"entries": len(unique), **report}


if __name__ == "__main__":
    print(record(demo=Path(sys.argv[1]) if len(sys.argv) > 1 else None))
