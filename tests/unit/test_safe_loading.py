"""Safe loading: no file the user points at can run code, and no path leaves its data folder.

Each test builds the hostile file on the spot (a pickle that would call ``os.system``, a model
folder whose config asks for its own code) and checks both the error and that the payload never
ran (its marker file was not written).
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from transferlab.backbones.images import load_state_dict_file
from transferlab.data import load_data
from transferlab.data.demo import load_numpy_pickle
from transferlab.errors import BackboneError, DataError

SRC = Path(__file__).resolve().parents[2] / "src" / "transferlab"


class _Payload:
    """Unpickling this runs ``os.system``: what a malicious pickle does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def _gzip_pickle(obj, path: Path) -> Path:
    with gzip.open(path, "wb") as fh:
        pickle.dump(obj, fh)
    return path


def test_numpy_only_unpickler_admits_arrays(tmp_path):
    arr = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert (load_numpy_pickle(_gzip_pickle(arr, tmp_path / "a.gz")) == arr).all()


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "dict of arrays"])
def test_numpy_only_unpickler_refuses_everything_else(tmp_path, payload):
    marker = tmp_path / "ran"
    obj = {"os.system": _Payload(marker), "builtins.eval": None, "dict of arrays": {"x": np.zeros(2)}}[payload]
    path = tmp_path / "evil.gz"
    if payload == "builtins.eval":
        # protocol 0 by hand: builtins.eval("open(marker, 'w')")
        code = f"open({str(marker)!r}, 'w')"
        with gzip.open(path, "wb") as fh:
            fh.write(b"cbuiltins\neval\n(V" + code.encode() + b"\ntR.")
    else:
        _gzip_pickle(obj, path)
    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays|does not hold a numpy array"):
        load_numpy_pickle(path)
    assert not marker.exists()


def test_torch_weights_file_cannot_run_code(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"weight": torch.zeros(2), "extra": _Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(BackboneError, match="evil.pth"):
        load_state_dict_file(tmp_path / "evil.pth")
    assert not marker.exists()
    torch.save({"state_dict": {"w": torch.ones(3)}}, tmp_path / "ok.pth")
    assert load_state_dict_file(tmp_path / "ok.pth")["w"].sum() == 3


def test_damaged_weights_files_are_backbone_errors(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json")
    with pytest.raises(BackboneError, match="w.safetensors.*complete .safetensors"):
        load_state_dict_file(tmp_path / "w.safetensors")
    (tmp_path / "w.pth").write_bytes(b"not a torch file")
    with pytest.raises(BackboneError, match="w.pth"):
        load_state_dict_file(tmp_path / "w.pth")
    with pytest.raises(BackboneError, match="does not exist"):
        load_state_dict_file(tmp_path / ".." / "missing.safetensors")


# Modules allowed to unpickle, and why what they unpickle cannot come from a user's file.
UNPICKLERS = {
    "data/demo.py": "the packaged Animal-MNIST pickles, through the numpy-only unpickler",
    "ranking/cost.py": "the job its own parent process pickled, read from its stdin pipe",
}


def test_every_torch_load_is_weights_only_and_no_bare_pickle():
    """Read the package's own source: a new ``torch.load`` without weights_only fails here."""
    for f in SRC.rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{f}: {call}"
        assert "trust_remote_code=True" not in text, f
        if f.relative_to(SRC).as_posix() not in UNPICKLERS:
            assert not re.search(r"pickle\.(load|loads|Unpickler)\b", text), f"{f} unpickles: see UNPICKLERS"
    assert "weights_only=True" in (SRC / "backbones" / "images.py").read_text()


def _remote_code_folder(tmp_path: Path, marker: Path) -> Path:
    folder = tmp_path / "remote-model"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil-bert",
                "auto_map": {"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"},
            }
        )
    )
    (folder / "configuration_evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import PretrainedConfig\n\nclass EvilConfig(PretrainedConfig):\n    model_type = 'evil-bert'\n"
    )
    return folder


def test_model_folder_needing_remote_code_names_the_flag(tmp_path):
    from transferlab.backbones import resolve

    marker = tmp_path / "ran"
    folder = _remote_code_folder(tmp_path, marker)
    with pytest.raises(BackboneError, match="needs to run its own code.*--trust-remote-code") as err:
        resolve(f"hf:{folder}")
    assert str(folder) in str(err.value) and "AutoConfig" in str(err.value)
    assert not marker.exists()


def test_cli_remote_code_is_a_user_error(tmp_path, reviews_csv):
    from typer.testing import CliRunner

    from transferlab.cli import app

    marker = tmp_path / "ran"
    folder = _remote_code_folder(tmp_path, marker)
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(reviews_csv),
            "--text-column",
            "review",
            "--label-column",
            "stars",
            "--backbone",
            f"hf:{folder}",
            "--rungs",
            "frozen",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2 and "--trust-remote-code" in res.stderr, res.output
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_relative_symlink_climbing_out_of_the_root_is_refused(image_folder, tmp_path):
    outside = tmp_path / "outside.png"
    (image_folder / "dark" / "0.png").rename(outside)
    os.symlink("../../outside.png", image_folder / "dark" / "0.png")  # resolves to tmp_path/outside.png
    with pytest.raises(DataError, match="0.png is a symbolic link to .*outside.png, outside the data folder"):
        load_data(image_folder)


def test_data_root_that_is_itself_a_link_and_dotdot_paths(image_folder, tmp_path):
    os.symlink(image_folder, tmp_path / "alias")
    ds = load_data(tmp_path / "alias")
    assert len(ds) == 24 and all(o.startswith(str(tmp_path / "alias")) for o in ds.origins)
    ds = load_data(image_folder / "dark" / ".." / ".." / image_folder.name)  # '..' in the path the user gives
    assert len(ds) == 24


def test_run_writes_only_inside_its_directory(tmp_path, image_folder):
    """Class names with dots, spaces and '..' become labels, never path parts of what a run writes."""
    import hashlib

    from PIL import Image

    import transferlab

    (image_folder / "a..b").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(image_folder / "a..b" / f"{i}.png")

    def snapshot() -> dict:
        return {
            str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in tmp_path.rglob("*")
            if p.is_file() and "run" not in p.relative_to(tmp_path).parts and "cache" not in p.parts
        }

    before = snapshot()
    res = transferlab.run(
        image_folder, out=str(tmp_path / "run"), rungs=["majority"], learning_curve=False, corruptions=False, quiet=True
    )
    assert snapshot() == before  # the data untouched, nothing written beside the run directory
    assert "a..b" in res["task"]["labels"]
    manifest = (tmp_path / "run" / "split_manifest.csv").read_text(encoding="utf-8")
    assert str(image_folder / "a..b" / "0.png") in manifest
