"""The controls as data: ``controls.toml`` (shipped), each control with its SOC 2 criteria and its check."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError

CONTROLS_FILE = Path(__file__).with_name("controls.toml")


class UnknownControl(UsageError):
    """No control has that id."""


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    criteria: tuple[str, ...]
    check: str
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "criteria": list(self.criteria)}


def load_controls(path: Path = CONTROLS_FILE) -> list[Control]:
    from aigentflow.compliance.checks import CHECKS

    data = tomllib.loads(path.read_text(encoding="utf-8"))
    controls = [Control(c["id"], c["title"], tuple(c["criteria"]), c["check"], c["description"])
                for c in data["control"]]
    unknown = [c.id for c in controls if c.check not in CHECKS]
    if unknown:
        raise UsageError(f"{path}: controls {', '.join(unknown)} name no known check")
    return controls


def find_control(control_id: str, controls: list[Control] | None = None) -> Control:
    controls = load_controls() if controls is None else controls
    for control in controls:
        if control.id.lower() == control_id.lower():
            return control
    raise UnknownControl(f"there is no control {control_id!r}; the controls are: "
                         f"{', '.join(c.id for c in controls)} (`aigentflow compliance status`)")
