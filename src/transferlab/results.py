"""results.json (schema ``transferlab.run/1``): written atomically, read back as RunResults."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from .errors import DataError

SCHEMA = "transferlab.run/1"


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null. numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json_atomic(data: dict, path: Path) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(_clean(data), fh, indent=2, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


class RunResults(dict):
    """The results.json content, with a few conveniences."""

    path: Path | None = None

    def rung(self, name: str) -> dict:
        for r in self["rungs"]:
            if r["name"] == name:
                return r
        raise KeyError(f"No rung '{name}' in this run; rungs: {', '.join(r['name'] for r in self['rungs'])}")

    def table(self) -> list[dict[str, Any]]:
        """One row per rung: test accuracy, balanced accuracy and macro-F1 with their intervals."""
        rows = []
        for r in self["rungs"]:
            t = r["test"]
            rows.append(
                {
                    "rung": r["name"],
                    "backbone": r["backbone"],
                    **{m: t[m]["mean"] for m in ("accuracy", "balanced_accuracy", "macro_f1")},
                    "accuracy_ci": t["accuracy"]["ci"],
                    "fit_seconds": r["cost"]["fit_seconds"],
                }
            )
        return rows

    def summary(self) -> None:
        from .report import print_summary

        print_summary(self)

    @property
    def report_path(self) -> Path | None:
        return None if self.path is None else self.path / "report.html"


def load_run(path: str | Path) -> RunResults:
    p = Path(path)
    file = p / "results.json" if p.is_dir() else p
    if not file.is_file():
        raise DataError(f"No results.json in '{path}'. Pass a finished run directory (one that holds results.json).")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{file} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if data.get("schema") != SCHEMA:
        raise DataError(f"{file} has schema {data.get('schema')!r}; this version of transferlab reads {SCHEMA!r}.")
    results = RunResults(data)
    results.path = file.parent
    return results
