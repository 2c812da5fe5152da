"""Skill packs: folders of instructions that agents get in their prompt when a task calls for them.

A skill is a folder holding a ``SKILL.md`` in the Agent Skills format other agent tools use: YAML
front matter between two ``---`` lines (``name``, equal to the folder's name; ``description``, what
the skill does and when to use it; optional ``allowed-tools``, ``license``, ``compatibility``,
``metadata``), then Markdown instructions, and optional ``scripts/`` and ``references/`` sub-folders.

Skills come from three places, the higher winning for a name: the project's
``.aigentflow/skills/``, the user's ``<user config dir>/skills/``, and the packs shipped in
``aigentflow/skills/builtin/``. ``discover`` finds them all (a malformed one is reported and
skipped), ``select`` picks the few relevant to a task, and ``render_layer`` turns the picks into the
prompt layer.

Importing this package loads only the standard library; PyYAML is imported when a file is parsed.
"""

from aigentflow.skills.loader import (
    BUILTIN_DIR,
    MAX_SKILL_FILE_BYTES,
    SKILL_FILE,
    SOURCES,
    Skill,
    SkillCatalog,
    SkillError,
    SkillProblem,
    discover,
    parse_skill,
    skill_dirs,
)
from aigentflow.skills.relevance import (
    LAYER_HEADER,
    Selection,
    render_layer,
    select,
    stem,
    terms,
)

__all__ = [
    "BUILTIN_DIR",
    "LAYER_HEADER",
    "MAX_SKILL_FILE_BYTES",
    "SKILL_FILE",
    "SOURCES",
    "Selection",
    "Skill",
    "SkillCatalog",
    "SkillError",
    "SkillProblem",
    "discover",
    "parse_skill",
    "render_layer",
    "select",
    "skill_dirs",
    "stem",
    "terms",
]
