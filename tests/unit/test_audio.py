"""Audio: the folder source, clip loading, the audio backbones (tiny random hf models, resemblyzer),
the MFCC baseline, corruptions and the audit, on tones written here and espeak-ng speech."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from transferlab.config import RunSpec
from transferlab.data import load_data, make_task
from transferlab.data.audio import Clip, fit_length, load_clip, read_audio
from transferlab.data.splits import content_hash
from transferlab.errors import ConfigError, DataError

warnings.filterwarnings("ignore", message=".*pkg_resources.*")


def tone(freq: float, seconds: float, rate: int, rng: np.random.Generator, noise: float = 0.02) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) + rng.normal(0, noise, len(t))).astype(np.float32)


def write_tones(root: Path, n_per_class: int = 12, seed: int = 0) -> Path:
    """Two classes a spectrum tells apart: low (200-400 Hz) and high (1.5-3 kHz) tones of 0.2-0.6 s,
    at 8 kHz and 22.05 kHz, as wav and flac."""
    rng = np.random.default_rng(seed)
    for label, (lo, hi) in {"low": (200, 400), "high": (1500, 3000)}.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            rate = (8000, 22050)[i % 2]
            sf.write(
                root / label / f"{i}.{('wav', 'flac')[i % 2]}",
                tone(rng.uniform(lo, hi), rng.uniform(0.2, 0.6), rate, rng),
                rate,
            )
    return root


@pytest.fixture(scope="module")
def tones(tmp_path_factory) -> Path:
    return write_tones(tmp_path_factory.mktemp("tones") / "tones")


# --- source ---------------------------------------------------------------------------------


def test_folder_is_detected_as_audio_and_respects_split_folders(tones, tmp_path):
    ds = load_data(tones)
    assert ds.modality == "audio" and len(ds) == 24 and set(ds.labels) == {"low", "high"}
    assert ds.origins == ds.items and all(Path(x).is_file() for x in ds.items)
    assert ds.splits is None
    for split in ("train", "val", "test"):
        shutil.copytree(tones / "low", tmp_path / "s" / split / "low")
        shutil.copytree(tones / "high", tmp_path / "s" / split / "high")
    assert set(load_data(tmp_path / "s").splits) == {"train", "val", "test"}


def test_mixed_image_and_audio_folder_fails(tones, tmp_path):
    from PIL import Image

    root = shutil.copytree(tones, tmp_path / "mixed")
    Image.new("RGB", (4, 4)).save(root / "low" / "x.png")
    with pytest.raises(DataError, match="both images .*png.* and audio"):
        load_data(root)


def test_resampling_keeps_duration_and_pitch():
    rng = np.random.default_rng(0)
    clip = Clip(tone(440, 1.0, 8000, rng, noise=0.0), 8000)
    out = load_clip(clip, 16_000, 1.0)
    assert out.shape == (16_000,) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16_000 / len(out) - 440) < 2


def test_crop_and_pad():
    x = np.arange(10, dtype=np.float32)
    assert fit_length(x, 4).tolist() == [3, 4, 5, 6]  # centre crop
    assert fit_length(x[:3], 5).tolist() == [0, 1, 2, 0, 0]  # zero-pad at the end
    crops = {tuple(fit_length(x, 4, np.random.default_rng(s))) for s in range(20)}
    assert len(crops) > 1  # random crops only when a generator (training) is given
    assert all(len(c) == 4 for c in crops)


def test_stereo_is_mixed_to_mono_and_formats_read(tmp_path):
    left = np.full(800, 0.5, dtype=np.float32)
    sf.write(tmp_path / "st.wav", np.stack([left, np.zeros(800, np.float32)], axis=1), 8000)
    mono = read_audio(tmp_path / "st.wav")
    assert mono.samples.shape == (800,) and np.allclose(mono.samples, 0.25, atol=1e-3)
    for fmt in ("flac", "ogg"):
        sf.write(tmp_path / f"a.{fmt}", left, 8000)
        assert read_audio(tmp_path / f"a.{fmt}").rate == 8000


@pytest.mark.parametrize(
    "content, match", [(b"", "empty file"), (b"RIFF\x00\x00not audio at all", "not a readable audio")]
)
def test_unreadable_file_fails_naming_it(tones, tmp_path, content, match):
    root = shutil.copytree(tones, tmp_path / "bad")
    (root / "high" / "broken.wav").write_bytes(content)
    with pytest.raises(DataError, match=rf"broken\.wav is .*{match}") as err:
        load_data(root)
    assert "Remove or replace" in str(err.value)


def test_every_unreadable_file_is_named_and_other_files_are_passed_over(tones, tmp_path):
    root = shutil.copytree(tones, tmp_path / "mess")
    (root / "low" / "notes.txt").write_text("recorded on a Tuesday")
    (root / "empty_class").mkdir()
    ds = load_data(root)
    assert len(ds) == 24 and {Path(s["origin"]).name for s in ds.skipped} == {"notes.txt", "empty_class"}
    for name in ("a.wav", "b.flac"):
        (root / "low" / name).write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"2 audio files cannot be read: .*a\.wav.*b\.flac"):
        load_data(root)


def test_content_hash_is_the_file_bytes_and_clips_hash_their_samples(tones):
    import hashlib

    f = sorted((tones / "low").iterdir())[0]
    assert content_hash(str(f), "audio") == hashlib.sha256(f.read_bytes()).hexdigest()
    a, b = Clip(np.zeros(10), 8000), Clip(np.zeros(10), 16000)
    assert content_hash(a, "audio") != content_hash(b, "audio")
    assert content_hash(a, "audio") == content_hash(Clip(np.zeros(10), 8000), "audio")


def test_from_arrays_takes_clips():
    from transferlab.data import from_arrays

    ds = from_arrays([Clip(np.zeros(8), 8000), Clip(np.ones(8) * 0.1, 8000)], ["a", "b"])
    assert ds.modality == "audio" and isinstance(ds.items[0], Clip)


def test_clip_seconds_setting_is_validated():
    assert RunSpec().clip_seconds == 3.0
    with pytest.raises(ConfigError, match="clip_seconds"):
        RunSpec(clip_seconds=0)


# --- backbones ------------------------------------------------------------------------------

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
WAV2VEC_SMALL = dict(
    SMALL,
    conv_dim=(16, 16),
    conv_stride=(5, 4),
    conv_kernel=(10, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)


@pytest.fixture(scope="module", params=["wav2vec2", "hubert", "ast"])
def tiny_audio_model(request, tmp_path_factory) -> Path:
    """A randomly initialised tiny audio transformer with its feature extractor, as a local folder."""
    import transformers as tf

    folder = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(1234)
    if request.param == "ast":
        tf.ASTModel(
            tf.ASTConfig(**SMALL, num_mel_bins=16, max_length=48, frequency_stride=8, time_stride=8)
        ).save_pretrained(folder)
        tf.ASTFeatureExtractor(num_mel_bins=16, max_length=48).save_pretrained(folder)
    else:
        model, config = {
            "wav2vec2": (tf.Wav2Vec2Model, tf.Wav2Vec2Config),
            "hubert": (tf.HubertModel, tf.HubertConfig),
        }[request.param]
        model(config(**WAV2VEC_SMALL)).save_pretrained(folder)
        tf.Wav2Vec2FeatureExtractor(sampling_rate=16_000).save_pretrained(folder)
    return folder


def test_hf_audio_contract(tiny_audio_model, tones):
    from transferlab.backbones import resolve
    from transferlab.backbones.audio import HFAudioBackbone

    b = resolve(f"hf:{tiny_audio_model}", clip_seconds=0.5, image_size=224, seed=0)
    assert isinstance(b, HFAudioBackbone) and b.modality == "audio" and b.sample_rate == 16_000
    items = [str(sorted((tones / "low").iterdir())[0]), Clip(np.zeros(4000), 8000)]  # a file and a clip
    enc = b.encoder()
    with torch.inference_mode():
        feats = enc(**b.preprocess(items))
    assert feats.shape == (2, b.feature_dim) and torch.isfinite(feats).all()
    groups = b.layer_groups(enc)
    assert len(groups) >= 3  # feature encoder / embeddings, then one per transformer layer
    ids = [id(p) for g in groups for p in g]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in enc.parameters()}
    scratch = b.trainable_copy(pretrained=False)
    assert any(not torch.equal(a, c) for a, c in zip(scratch.parameters(), enc.parameters()))


def _context(task, backbone, **spec):
    from transferlab.features import extract
    from transferlab.rungs import Context

    def features(split):
        return extract(backbone, task.part(split)[0], task.part_hashes(split)).features

    return Context(task, RunSpec(**{"epochs": 2, "head_epochs": 5, "batch_size": 8, **spec}), 0, backbone, features)


def test_hf_audio_through_frozen_and_finetune(tiny_audio_model, tones):
    from transferlab.backbones import resolve
    from transferlab.rungs import RUNGS

    task = make_task(load_data(tones), seed=0)
    ctx = _context(task, resolve(f"hf:{tiny_audio_model}", clip_seconds=0.25), epochs=1)
    for strategy in ("frozen", "finetune"):
        out = RUNGS.get(strategy)().run(ctx)
        assert out.test_pred.shape == (len(task.indices("test")),)
        # corrupted copies arrive as in-memory clips
        assert out.predict_proba([Clip(np.zeros(4000), 8000)]).shape == (1, 2)
    assert out.curves["epoch"][0] == 0 and len(out.curves["epoch"]) >= 2  # head warm-up, then unfreezing


def test_resemblyzer_matches_the_package_and_groups_its_lstm_layers(spoken_words):
    from resemblyzer import VoiceEncoder, preprocess_wav

    from transferlab.backbones import resolve

    b = resolve("resemblyzer", image_size=224)
    assert b.modality == "audio" and b.provenance["licence"] == "Apache-2.0"
    assert "VoxCeleb" in b.provenance["pretrained_on"]
    files = sorted(str(f) for f in (spoken_words / "yes").iterdir())[:2]
    enc = b.encoder()
    with torch.inference_mode():
        ours = enc(**b.preprocess(files)).numpy()
    reference = VoiceEncoder(device="cpu", verbose=False)
    for f, mine in zip(files, ours):
        theirs = reference.embed_utterance(fit_length(preprocess_wav(f), b.clip_samples))
        assert float(mine @ theirs) > 0.999  # the same embedding (resamplers differ slightly)
    groups = b.layer_groups(enc)
    assert [len(g) for g in groups] == [4, 4, 4, 2] and b.feature_dim == 256
    # a silent clip neither divides by zero nor yields NaN
    with torch.inference_mode():
        assert torch.isfinite(enc(**b.preprocess([Clip(np.zeros(16_000), 16_000)]))).all()


def test_audio_backbone_refuses_text_data(tmp_path):
    from transferlab import runner

    with pytest.raises(Exception, match="audio data but the data is text|is for audio"):
        runner.resolve_backbones(RunSpec(backbones=["resemblyzer"], rungs=["frozen"]), "text")


# --- classical rung, corruptions, audit -----------------------------------------------------


def test_mfcc_classical_separates_tones(tones):
    from transferlab.rungs import RUNGS
    from transferlab.rungs.classical import audio_features

    feats = audio_features([str(sorted((tones / "low").iterdir())[0])] * 2, seconds=0.5)
    assert feats.shape == (2, 80) and np.array_equal(feats[0], feats[1])
    task = make_task(load_data(tones), seed=0)
    out = RUNGS.get("classical")().run(_context(task, None, clip_seconds=0.5))
    y_test = task.part("test")[1]
    assert (out.test_pred == y_test).mean() >= 0.8
    assert "MFCC" in out.chosen["features"]


def test_audio_corruptions_are_deterministic_and_leave_files_alone(tones):
    from transferlab.evaluation.corruptions import corrupted_sets

    files = [str(f) for f in sorted((tones / "high").iterdir())[:3]]
    before = [Path(f).read_bytes() for f in files]
    sets = corrupted_sets("audio", files, seed=0)
    assert set(sets) == {"white_noise", "gain", "time_shift", "low_pass"}
    again = corrupted_sets("audio", files, seed=0)
    for name, clips in sets.items():
        assert all(isinstance(c, Clip) for c in clips)
        assert all(np.array_equal(a.samples, b.samples) for a, b in zip(clips, again[name]))
    clean = read_audio(files[0]).samples
    noise = sets["white_noise"][0].samples - clean
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
    assert 9 < snr < 11
    assert np.allclose(sets["gain"][0].samples, clean * 0.1, atol=1e-6)
    shifted = sets["time_shift"][0]
    assert len(shifted.samples) > len(clean) and not np.any(shifted.samples[: len(shifted.samples) - len(clean)])
    assert np.std(sets["low_pass"][0].samples) < 0.5 * np.std(clean)  # 1.5-3 kHz tones are cut
    assert [Path(f).read_bytes() for f in files] == before


def test_audit_finds_copied_recordings_by_file_hash_and_embedding(tmp_path):
    from transferlab.auditing import AuditInputs, run_audit
    from transferlab.auditing.matching import find_matches

    # 80 recordings: with a handful, random pairs (which calibrate the cosine threshold) hit the copy itself
    root = write_tones(tmp_path / "dupes", n_per_class=40)
    shutil.copy(root / "low" / "0.wav", root / "high" / "copy_of_low0.wav")  # same bytes, other label
    clean = read_audio(root / "low" / "2.wav")
    sf.write(root / "low" / "quieter2.wav", clean.samples * 0.9, clean.rate)  # other bytes, same sound
    task = make_task(load_data(root), seed=0)
    features = np.stack([np.abs(np.fft.rfft(load_clip(x, 8000, 0.5)))[:200] for x in task.items])
    report = run_audit(AuditInputs(task, features=features))
    found = {f.check: f for f in report.findings}
    assert found["exact_duplicates"].count == 1 and found["label_conflicts"].count >= 1
    copy = task.items.index(str(root / "high" / "copy_of_low0.wav"))
    assert any(copy in p for p in found["exact_duplicates"].pairs)
    quiet, original = (task.items.index(str(root / "low" / name)) for name in ("quieter2.wav", "2.wav"))
    near = find_matches(AuditInputs(task, features=features)).near  # within and across splits
    assert (min(quiet, original), max(quiet, original)) in {(min(p), max(p)) for p in near.as_list()}
    assert len(near) <= 2  # distinct tones are not near-duplicates
    # only the checks that need a group or time column are skipped
    assert {f.check for f in report.skipped} == {"group_overlap", "time_overlap"}
