"""The Analyst: research for a feature request, from the repository itself plus the model's notes."""

from __future__ import annotations

from pydantic import BaseModel

from actors.base import BaseAgent
from aigentflow.roles.outputs import AnalystNotes, Research
from aigentflow.run.protocol import AgentCall


class Analyst(BaseAgent):
    role = "analyst"
    output_model = Research
    model_output = AnalystNotes

    def task_prompt(self, call: AgentCall) -> str:
        snapshot = call.inputs.get("snapshot") or {}
        listing = "\n".join(f"- {f['path']} ({f['size']} bytes)" for f in snapshot.get("files", []))
        key_files = "\n\n".join(
            f"## {path}\n\n```\n{text}\n```" for path, text in sorted(snapshot.get("key_files", {}).items())
        )
        more = "\n(the listing is truncated)" if snapshot.get("truncated") else ""
        return (
            f"Feature request:\n\n{call.request}\n\n"
            f"Repository files:\n{listing}{more}\n\nKey files:\n\n{key_files}\n\n"
            "Research this request against the repository."
        )

    def finish(self, model_output: BaseModel, call: AgentCall) -> Research:
        assert isinstance(model_output, AnalystNotes)
        facts = call.inputs.get("facts") or {}
        snapshot = call.inputs.get("snapshot") or {}
        known = {f["path"] for f in snapshot.get("files", [])}
        # A truncated listing does not name every file, so absence from it proves nothing.
        complete = bool(known) and len(known) >= snapshot.get("total_files", len(known))
        unknown = [p for p in model_output.relevant_files if complete and p not in known]
        return Research(
            request=call.request,
            languages=facts.get("languages", {}),
            primary_language=facts.get("primary_language"),
            frameworks=facts.get("frameworks", []),
            package_manager=facts.get("package_manager"),
            test_command=facts.get("test_command"),
            entry_points=facts.get("entry_points", []),
            file_count=facts.get("file_count", 0),
            notes=model_output,
            unknown_files=unknown,
        )

    def files(self, output: BaseModel, call: AgentCall) -> dict[str, str]:
        assert isinstance(output, Research)
        notes = output.notes

        def bullets(items: list[str]) -> str:
            return "\n".join(f"- {item}" for item in items) or "- (none)"

        languages = ", ".join(f"{k} ({v} files)" for k, v in sorted(output.languages.items())) or "unknown"
        text = (
            f"# Research\n\n**Request:** {output.request}\n\n## Summary\n\n{notes.summary}\n\n"
            f"## The repository\n\n- Languages: {languages}\n"
            f"- Frameworks: {', '.join(output.frameworks) or 'none found'}\n"
            f"- Package manager: {output.package_manager or 'unknown'}\n"
            f"- Test command: `{output.test_command or 'unknown'}`\n"
            f"- Entry points: {', '.join(output.entry_points) or 'none found'}\n- Files: {output.file_count}\n\n"
            f"## Relevant files\n\n{bullets(notes.relevant_files)}\n\n"
            f"## Constraints\n\n{bullets(notes.constraints)}\n\n"
            f"## Risks\n\n{bullets(notes.risks)}\n\n## Open questions\n\n{bullets(notes.open_questions)}\n"
        )
        if output.unknown_files:
            text += f"\n## Not in the repository (named by the model)\n\n{bullets(output.unknown_files)}\n"
        return {"research.md": text}
