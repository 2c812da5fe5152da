"""Which skills fit a task, and the prompt layer that carries them.

Selection is lexical and deterministic on purpose: the same task text and the same skills always
give the same picks, in the same order, so prompts stay reproducible (and replayable from cassettes)
and a pick can be explained by the words that matched.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aigentflow.skills.loader import Skill, SkillCatalog

LAYER_HEADER = "# Skills\n\nSkills picked for this task; follow their instructions where they apply."

MIN_TERM_CHARS = 3
SHORT_TERMS = frozenset({"js", "ts", "ci", "ui", "ux", "db", "qa"})
"""Two-letter words kept as terms anyway: they name things."""

STOPWORDS = frozenset({
    "about", "above", "after", "again", "against", "all", "also", "and", "any", "are", "because", "been",
    "before", "being", "below", "between", "both", "but", "can", "cannot", "could", "did", "does", "doing",
    "done", "down", "during", "each", "either", "else", "etc", "every", "few", "for", "from", "further",
    "get", "gets", "had", "has", "have", "having", "her", "here", "hers", "him", "his", "how", "however",
    "into", "its", "itself", "just", "let", "like", "made", "make", "makes", "many", "may", "might", "more",
    "most", "much", "must", "need", "needs", "new", "nor", "not", "now", "off", "once", "one", "only",
    "other", "our", "out", "over", "own", "per", "please", "same", "see", "shall", "she", "should", "some",
    "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those",
    "through", "too", "under", "until", "upon", "use", "used", "uses", "using", "very", "via", "want", "was",
    "way", "well", "were", "what", "when", "where", "whether", "which", "while", "who", "whom", "why",
    "will", "with", "within", "without", "would", "yet", "you", "your",
    # verbs every task and every skill uses: they tell no skill from another
    "add", "adds", "adding", "added", "write", "writes", "writing", "written", "run", "runs", "running",
    "change", "changes", "changing", "changed", "update", "updates", "updating", "updated", "work", "works",
    "file", "files", "line", "lines",
})
"""Words that say nothing about what a skill is for."""

_WORD = re.compile(r"[a-z0-9]+")
_VOWEL = re.compile(r"[aeiouy]")


@dataclass(frozen=True)
class Selection:
    """A skill picked for a text: its score and the terms it shared with the text."""

    skill: Skill
    score: int
    matched: tuple[str, ...]


def _undouble(stem: str) -> str:
    """``runn`` -> ``run``, ``committ`` -> ``commit``; ``pass``, ``fill`` and ``buzz`` are left alone."""
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "aeioulsz":
        return stem[:-1]
    return stem


def stem(word: str) -> str:
    """A light stemmer: plural ``s``/``ies``, ``-ing``, ``-ed``, then a final ``e``.

    ``tests``, ``testing``, ``tested`` and ``test`` all give ``test``; ``parse``, ``parses``,
    ``parsing`` and ``parsed`` give ``pars``. A suffix is only removed when what is left still has a
    vowel (``string`` stays ``string``).
    """
    if len(word) > 4 and word.endswith(("ies", "ied")):
        word = word[:-3] + "y"
    elif len(word) >= 6 and word.endswith("ing") and _VOWEL.search(word[:-3]):
        word = _undouble(word[:-3])
    elif len(word) >= 5 and word.endswith("ed") and _VOWEL.search(word[:-2]):
        word = _undouble(word[:-2])
    elif len(word) >= 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) >= 4 and word.endswith("e"):
        word = word[:-1]
    return word


@functools.lru_cache(maxsize=4096)
def terms(text: str) -> frozenset[str]:
    """The distinct stemmed terms of ``text``: lowercase words, short ones, numbers and stopwords left out."""
    found = set()
    for word in _WORD.findall(text.lower()):
        if word.isdigit() or word in STOPWORDS:
            continue
        if len(word) < MIN_TERM_CHARS and word not in SHORT_TERMS:
            continue
        found.add(stem(word))
    return frozenset(found)


def score(skill: Skill, text_terms: frozenset[str]) -> tuple[int, tuple[str, ...]]:
    """(score, matched terms) of one skill against a text's terms; see ``select``."""
    name_terms = terms(skill.name.replace("-", " "))
    matched = (name_terms | terms(skill.description)) & text_terms
    return sum(2 if term in name_terms else 1 for term in matched), tuple(sorted(matched))


def select(catalog: SkillCatalog | Mapping[str, Skill] | Iterable[Skill], text: str, *, limit: int = 3,
           min_score: int = 2, min_terms: int = 2, context: str = "") -> list[Selection]:
    """The skills of ``catalog`` most relevant to ``text``, best first: at most ``limit`` of them.

    ``text`` is what the agent is asked to do (a task's title, description and acceptance criteria,
    the feature request, the role). The rule, deterministic and explainable:

    - terms: the text is lowercased and split into words of letters and digits; words shorter than
      three letters (but for a few names like ``js``, ``ts``, ``ci``), plain numbers and common
      stopwords are dropped; each word is lightly stemmed (plural ``s``, ``-ing``, ``-ed``, a final
      ``e``), so ``tests``, ``testing`` and ``test`` are the same term;
    - a skill's terms are those of its name (hyphens split words) and of its description; its score
      is the number of its distinct terms found in the text, a term of its name counting 2;
    - skills scoring at least ``min_score`` and sharing at least ``min_terms`` distinct terms with the
      text are kept, highest score first, ties by name.

    ``context`` (what the project is made of: its languages, frameworks, test command) counts only
    for a skill that shares at least one term with ``text`` itself: a Python project does not make
    the Python testing skill fit a task that has nothing to do with tests.

    With the defaults a skill needs two reasons: one word of its name is not enough on its own (a
    Python test task says "test", as does the JavaScript testing skill's name; that skill is picked
    only when "javascript", "node" or "npm" match too).
    ``catalog`` is a ``SkillCatalog`` (only its winners are considered), a mapping of names to
    skills, or a list of skills.
    """
    if limit <= 0:
        return []
    if isinstance(catalog, SkillCatalog):
        skills = list(catalog.skills.values())
    elif isinstance(catalog, Mapping):
        skills = list(catalog.values())
    else:
        skills = list(catalog)
    text_terms = terms(text)
    with_context = text_terms | terms(context)
    picks = []
    for skill in skills:
        if not score(skill, text_terms)[1]:
            continue
        points, matched = score(skill, with_context)
        if points >= min_score and len(matched) >= min_terms:
            picks.append(Selection(skill=skill, score=points, matched=matched))
    picks.sort(key=lambda s: (-s.score, s.skill.name))
    return picks[:limit]


def _truncation_note(omitted: int) -> str:
    return (f"[... truncated: {omitted} more characters of this skill's instructions are left out to keep the "
            "prompt short]")


def _section(skill: Skill, body: str) -> str:
    parts = [f"## Skill: {skill.name}", skill.description.strip()]
    if body:
        parts.append(body)
    files = [*skill.scripts, *skill.references]
    if files:
        parts.append("Files of this skill (named only, not included): " + ", ".join(files))
    return "\n\n".join(parts)


def _layer(selections: list[Selection], bodies: list[str]) -> str:
    return "\n\n".join([LAYER_HEADER, *(_section(s.skill, b) for s, b in zip(selections, bodies, strict=True))])


def _cut(body: str, keep: int) -> str:
    """The first ``keep`` characters of ``body``, at a line end when one is not too far back."""
    head = body[:keep]
    newline = head.rfind("\n")
    if newline >= keep // 2:
        head = head[:newline]
    head = head.rstrip()
    if not head:
        return _truncation_note(len(body))
    omitted = len(body) - len(head)
    if sum(1 for line in head.split("\n") if line.lstrip().startswith("```")) % 2:
        head += "\n```"  # the cut fell inside a code block: close it, so that the note reads as text
    return f"{head}\n\n{_truncation_note(omitted)}"


def render_layer(selections: list[Selection], max_chars: int = 12000) -> str:
    """The prompt layer of the picked skills, at most ``max_chars`` long; "" when nothing was picked.

    A short header, then for each skill ``## Skill: <name>``, its description, its instructions and
    the names of its ``scripts/`` and ``references/`` files (their contents are not included). When
    the whole would be longer than ``max_chars``, the instructions are shortened, the longest first
    (short ones are kept whole and the room left is shared among the others), each cut one ending
    with a visible note saying how much was left out.
    """
    if not selections:
        return ""
    bodies = [s.skill.body.strip() for s in selections]
    full = _layer(selections, bodies)
    if len(full) <= max_chars:
        return full
    # Room for the bodies: what is left after everything else, and a note for each body.
    note_room = len(_truncation_note(10 ** 7)) + len("\n```\n\n")
    fixed = len(_layer(selections, [""] * len(bodies)))
    room = max(0, max_chars - fixed - sum(2 + note_room for _ in bodies))
    keep = [0] * len(bodies)
    order = sorted(range(len(bodies)), key=lambda i: len(bodies[i]))
    for position, index in enumerate(order):  # water-filling: the short bodies fit whole
        share = room // (len(order) - position)
        keep[index] = min(len(bodies[index]), share)
        room -= keep[index]
    cut = [body if keep[i] >= len(body) else _cut(body, keep[i]) for i, body in enumerate(bodies)]
    layer = _layer(selections, cut)
    if len(layer) > max_chars:  # even the headers, descriptions and file names do not fit
        note = "\n\n[... skills layer truncated to fit the prompt]"
        layer = layer[:max(0, max_chars - len(note))].rstrip() + note if max_chars > len(note) else layer[:max_chars]
    return layer
