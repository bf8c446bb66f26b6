"""Finished rungs reused across runs: a rung that already ran on the same data with the same
settings, backbone weights and code is read from the cache folder instead of being fitted again.

An entry's key is a hash of everything its result depends on (``rung_key``): the task as the
rung saw it (content hashes, labels, the split after the audit and each seed's redrawn
train/validation split), the OOD sets it is scored on, the settings of scope ``result`` and the
rung's own ``settings`` (``transferlab.config.SCOPES``), the backbone's ``cache_id()``, the
versions of transferlab and the numeric libraries, the torch threads and device, and a hash of
the source files that compute it. An entry holds the rung's stage (results.json record, learning
curve) and a copy of its saved model folder, each file with its sha256: an entry that fails the
check is ignored with a warning and fitted again, never half-used.

Entries live in ``<cache_dir>/rungs/<key>/`` (default ``~/.cache/transferlab/rungs``, beside the
feature cache), written to a temporary folder and renamed, so a reader sees whole entries only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ..config import INPUT_PATHS, RunSpec, setting_scope
from ..data import Task
from ..progress import Progress
from ..version import __version__
from .fit import RungStage
from .plan import RungJob, seed_draws
from .store import safe_name

SCHEMA = "transferlab.rung-cache/1"
ENTRY = "entry.json"
MODEL = "model"  # the entry's copy of the run directory's models/<rung>/
LIBRARIES = ("torch", "numpy", "scikit-learn", "scipy", "transformers", "peft", "timm", "torchvision")
PACKAGE = Path(__file__).resolve().parent.parent  # src/transferlab
# the code every rung's result passes through: the loop, the metrics, seeds and splits, the record
SHARED_CODE = (
    "training",
    "evaluation",
    "data/splits.py",
    "stages/fit.py",
    "stages/plan.py",
    "export.py",
    "rungs/base.py",
    "rungs/linear.py",
)
BACKBONE_CODE = ("backbones", "features/__init__.py", "stages/features.py")


def cache_root(spec: RunSpec) -> Path:
    """``<cache_dir>/rungs``; without ``cache_dir``, ``rungs/`` beside the default feature folder."""
    if spec.cache_dir:
        return Path(spec.cache_dir).expanduser() / "rungs"
    from ..features import default_cache_dir

    return default_cache_dir().parent / "rungs"


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def task_digest(task: Task) -> str:
    """The examples (content hashes, in order), their labels and the split, as the stages after the audit see them."""
    return _digest(
        task.modality, list(task.classes), list(task.hashes), task.y.astype(int).tolist(), [str(s) for s in task.split]
    )


def _item_digest(item: Any, modality: str) -> str:
    from ..data.splits import content_hash

    if hasattr(item, "mode") and hasattr(item, "size"):  # a PIL image (a corrupted copy)
        item = np.asarray(item)
    return content_hash(item, modality)


def ood_digest(ood: dict[str, dict], modality: str) -> str:
    """The OOD sets every rung is scored on: names, items by content, labels, test positions."""
    parts = []
    for name in sorted(ood):
        s = ood[name]
        pos = s.get("test_positions")
        parts.append(
            [
                name,
                s.get("kind"),
                [_item_digest(i, modality) for i in s["items"]],
                np.asarray(s["y"]).astype(int).tolist(),
                None if pos is None else np.asarray(pos).tolist(),
            ]
        )
    return _digest(parts)


def rung_settings(rung_cls: type) -> list[str]:
    """The settings in a rung's key: scope ``result``, and the ``rung`` ones it declares reading
    (every ``rung`` setting when it declares none)."""
    names = {f.name: setting_scope(f) for f in fields(RunSpec)}
    declared = getattr(rung_cls, "settings", None)
    own = [n for n, s in names.items() if s == "rung"] if declared is None else list(declared)
    return sorted({n for n, s in names.items() if s == "result"} | set(own))


def _setting_value(spec: RunSpec, name: str) -> Any:
    """The setting's value; for a file setting (a label_descriptions file) its content too."""
    value = getattr(spec, name)
    if name in INPUT_PATHS and isinstance(value, str) and Path(value).expanduser().is_file():
        return [value, _file_sha256(Path(value).expanduser())]
    return value


def code_files(rung_cls: type) -> list[Path]:
    """The source files a rung's result depends on: the modules of its class and its bases and the
    rung modules they import (``from .small_models import``), the shared code (training loop,
    metrics, splits, the record), and for a backbone rung the backbones and feature extraction."""
    import inspect
    import re

    files = set()
    for c in rung_cls.__mro__:
        source = inspect.getsourcefile(c) if c.__module__.startswith("transferlab.") or c is rung_cls else None
        if source:
            files.add(Path(source).resolve())
    todo = [f for f in files if f.parent == PACKAGE / "rungs"]
    while todo:  # the rung modules they import, and theirs
        for name in re.findall(r"^\s*from \.(\w+) import", todo.pop().read_text(encoding="utf-8"), re.M):
            path = PACKAGE / "rungs" / f"{name}.py"
            if path.exists() and path not in files:
                files.add(path)
                todo.append(path)
    for rel in SHARED_CODE + (BACKBONE_CODE if getattr(rung_cls, "needs_backbone", True) else ()):
        path = PACKAGE / rel
        files |= set(path.rglob("*.py")) if path.is_dir() else {path} if path.exists() else set()
    return sorted(files)


_CODE_SALTS: dict[tuple, str] = {}


def code_salt(files: list[Path]) -> str:
    """A hash of the files' contents (read once per process)."""
    key = tuple(files)
    if key not in _CODE_SALTS:
        h = hashlib.sha256()
        for path in files:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        _CODE_SALTS[key] = h.hexdigest()
    return _CODE_SALTS[key]


def environment(threads: int | None = None) -> dict:
    """What else changes the numbers: library versions, the torch threads the rungs fit with (this
    process's, unless ``threads``) and the device."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    from ..devices import device

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "transferlab": __version__,
        **versions,
        "threads": threads or torch.get_num_threads(),
        "device": device().type,
    }


def rung_key(
    job: RungJob, task: Task, spec: RunSpec, clusters: np.ndarray | None, ood_hash: str, env: dict | None = None
) -> str:
    """The key of one rung's result: the hash of everything it depends on (module docstring)."""
    from ..rungs import RUNGS

    cls = RUNGS.get(job.strategy)
    spec = job.spec_for(spec)  # the settings the time limit cut are the rung's settings
    draws, _ = seed_draws(cls(), task, spec, clusters)
    return _digest(
        {
            "name": job.name,
            "backbone": job.backbone.cache_id() if job.backbone is not None else None,
            "task": task_digest(task),
            "draws": [[spec.seed + k, [str(s) for s in draw.split]] for k, draw in draws],
            "ood": ood_hash,
            "settings": {n: _setting_value(spec, n) for n in rung_settings(cls)},
            "code": code_salt(code_files(cls)),
            "environment": env if env is not None else environment(),
        }
    )[:32]


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link where the file system allows one (no second copy of the weights), else a copy.
    A file changed in place afterwards fails the entry's checksum, so the entry is refitted."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): _file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _remove_orphans(root: Path, key: str) -> None:
    """Half-written entries of ``key`` left by a process that was killed while writing one."""
    for leftover in root.glob(f".{key}.*.tmp"):
        pid = leftover.name[len(key) + 2 :].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # still running (another run storing the same rung): leave it
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except PermissionError:
            pass


class RungCache:
    """The finished rungs of earlier runs, for one run: ``reuse`` a job's result, ``keep`` a new one."""

    def __init__(
        self,
        task: Task,
        spec: RunSpec,
        out: Path,
        clusters: np.ndarray | None,
        ood: dict[str, dict],
        progress: Progress,
        enabled: bool = True,
    ):
        self.task, self.spec, self.out, self.clusters, self.progress = task, spec, out, clusters, progress
        self.root, self.enabled = cache_root(spec), enabled
        self._ood = ood
        self._ood_hash: str | None = None
        self._env: dict | None = None
        self._keys: dict[str, str] = {}

    def key(self, job: RungJob) -> str:
        known = f"{job.name} {job.overrides!r}"  # the time limit may cut a rung's settings between calls
        if known not in self._keys:
            if self._ood_hash is None:  # once per run: the OOD sets and the environment are every rung's
                ray = self.spec.executor == "ray"  # Ray tasks fit with spec.threads (default 1), not ours
                self._ood_hash = ood_digest(self._ood, self.task.modality)
                self._env = environment((self.spec.threads or 1) if ray else None)
            self._keys[known] = rung_key(job, self.task, self.spec, self.clusters, self._ood_hash, self._env)
        return self._keys[known]

    def has(self, job: RungJob) -> bool:
        """Whether ``reuse`` would find an entry for ``job`` (not whether it is intact)."""
        return self.enabled and not self.spec.force and (self.root / self.key(job) / ENTRY).exists()

    def reuse(self, job: RungJob) -> RungStage | None:
        """The job's cached result, its model copied into this run's models/; None to fit it."""
        if not self.enabled or self.spec.force:
            return None
        key = self.key(job)
        folder = self.root / key
        if not (folder / ENTRY).exists():
            return None
        try:
            entry = self._checked(folder, key, job)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._warn(
                f"The cached result of rung {job.name} ({folder}) is damaged ({exc}); it is ignored and "
                "the rung is fitted again."
            )
            shutil.rmtree(folder, ignore_errors=True)
            return None
        stage = RungStage.from_dict(entry["stage"])
        if stage.record.get("artifact"):
            try:
                self._restore_model(folder / MODEL, job)
            except OSError as exc:
                self._warn(
                    f"Could not copy the cached model of rung {job.name} into {self.out / 'models'} ({exc}); "
                    "the rung is fitted again."
                )
                return None
        stage.record["reused_from"] = {"run": entry["run"], "key": key}
        t = stage.record["test"]
        self.progress.log(f"rung [bold]{job.name}[/]: reused from {entry['run']} (key {key[:12]})")
        self.progress.log(
            f"  {job.name}: test accuracy {t['accuracy']['mean']:.3f}, macro-F1 {t['macro_f1']['mean']:.3f} (reused)"
        )
        return stage

    def keep(self, job: RungJob, stage: RungStage) -> None:
        """Store a freshly fitted rung (never one that was itself reused, nor one the time limit cut
        short: a run with more time must train it whole), replacing any older entry."""
        if not self.enabled or stage.record.get("reused_from") or stage.record.get("stopped_at_limit"):
            return
        key = self.key(job)
        self.root.mkdir(parents=True, exist_ok=True)
        _remove_orphans(self.root, key)
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            files: dict[str, str] = {}
            artifact = stage.record.get("artifact")
            if artifact:
                shutil.copytree(self.out / artifact["path"], tmp / MODEL, copy_function=_link_or_copy)
                files = _checksums(tmp / MODEL)
            entry = {
                "schema": SCHEMA,
                "key": key,
                "name": job.name,
                "run": str(self.out.resolve()),
                "stage": stage.to_dict(),
                "files": files,
            }
            (tmp / ENTRY).write_text(json.dumps(entry), encoding="utf-8")
            final = self.root / key
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except OSError as exc:  # a full or read-only cache folder costs the reuse, not the run
            self._warn(
                f"Could not store rung {job.name} in the cache folder {self.root} ({exc}); the next run fits it again."
            )
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _checked(self, folder: Path, key: str, job: RungJob) -> dict:
        """The entry, after checking it is whole: its key, its record, every model file's sha256."""
        entry = json.loads((folder / ENTRY).read_text(encoding="utf-8"))
        if entry.get("schema") != SCHEMA or entry.get("key") != key or entry.get("name") != job.name:
            raise ValueError("it belongs to another key, rung or cache layout")
        record = entry["stage"]["record"]
        if not isinstance(record, dict) or "test" not in record or "predictions" not in record:
            raise ValueError("its record has no test results")
        if bool(record.get("artifact")) != bool(entry["files"]):
            raise ValueError("its saved model is missing")
        if entry["files"] and _checksums(folder / MODEL) != entry["files"]:
            raise ValueError("its saved model's files do not match their checksums")
        return entry

    def _restore_model(self, source: Path, job: RungJob) -> None:
        """The cached model as this run's models/<rung>/ (what ``transferlab export`` reads)."""
        safe = safe_name(job.name)
        final, tmp = self.out / "models" / safe, self.out / "models" / f".{safe}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, tmp, copy_function=_link_or_copy)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)

    def _warn(self, message: str) -> None:
        self.progress.log(f"[yellow]warning:[/] {message}")
        self.task.notes.append(message)
