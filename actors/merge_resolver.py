"""The Merge Conflict Resolver: resolved contents for files a merge left in conflict.

Its answer is only a proposal: it is applied in a scratch worktree through the edit guard, no
conflict marker may remain, and the project's tests must pass there before the merge is committed.
A resolver that says it succeeded without that never merges (``actors.workflow``).
"""

from __future__ import annotations

import json

from actors.base import BaseAgent
from actors.developer import render_files
from aigentflow.roles.outputs import Resolution
from aigentflow.run.protocol import AgentCall


class MergeResolver(BaseAgent):
    role = "merge_resolver"
    output_model = Resolution

    def task_prompt(self, call: AgentCall) -> str:
        return (
            f"Feature request:\n\n{call.request}\n\nMerging `{call.inputs['source']}` into `{call.inputs['target']}` "
            f"conflicts. The conflicting hunks:\n\n```json\n{json.dumps(call.inputs['hunks'], indent=2)}\n```\n\n"
            f"The conflicted files as the merge left them (with conflict markers):\n\n"
            f"{render_files(call.inputs.get('files', {}))}\n\n"
            "Resolve every conflict so that both changes keep working. Give each conflicted file in full, "
            "without conflict markers. Say resolved=false if you cannot."
        )
