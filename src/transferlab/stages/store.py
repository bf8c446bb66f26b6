"""The run directory's memory for ``--resume``: ``run.json`` (the settings and where the data came
from, written first) and each finished stage as one JSON file under ``stages/``, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import RunSpec
from ..errors import ConfigError
from ..results import write_json_atomic

STAGES = "stages"  # run-directory folder holding each finished stage, for --resume
RUN_STATE = "run.json"


class StageStore:
    """Each finished stage of a run as one JSON file, written atomically: what --resume reuses."""

    def __init__(self, out: Path, enabled: bool = True):
        self.dir, self.enabled = out / STAGES, enabled

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def load(self, name: str) -> dict | None:
        path = self.path(name)
        if not self.enabled or not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # written atomically, so this is damage from outside: redo the stage
            return None

    def save(self, name: str, data: dict) -> dict:
        """Write the stage; return it as read back, so a fresh and a resumed run go on from the same values."""
        if not self.enabled:
            return data
        self.path(name).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(data, self.path(name))
        saved = self.load(name)
        assert saved is not None  # just written atomically
        return saved


def safe_name(name: str) -> str:
    """A rung's name (``finetune:hf:org/model``) as one file or folder name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_run_state(out: Path, data_path: str | None, mode: str, spec: RunSpec) -> None:
    """What --resume needs to start the run again: the settings, the data's path, run/rank/audit."""
    write_json_atomic(
        {"schema": "transferlab.state/1", "data": data_path, "mode": mode, "spec": spec.to_dict()}, out / RUN_STATE
    )


def read_run_state(out: Path) -> tuple[RunSpec, Any, str]:
    """The settings, the recorded data (a path, ``demo:NAME`` or None for in-memory data) and the mode
    of the unfinished run in ``out``; a finished or foreign folder is refused with what to do."""
    if (out / "results.json").exists():
        raise ConfigError(f"'{out}' is a finished run (it has results.json); there is nothing to resume.")
    state = out / RUN_STATE
    if not state.exists():
        raise ConfigError(
            f"'{out}' is not a transferlab run directory (no run.json). Pass the folder a run "
            "was writing to (its --out)."
        )
    try:
        saved = json.loads(state.read_text(encoding="utf-8"))
        spec = RunSpec(**{**saved["spec"], "out": str(out)})
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{state}: cannot read the run's settings ({exc}). Start the run again.") from None
    return spec, saved.get("data"), saved.get("mode", "run")
