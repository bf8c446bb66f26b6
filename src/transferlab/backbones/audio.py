"""Audio backbones: the packaged ``resemblyzer`` speaker encoder, and ``hf:`` speech/audio models.

Both take file paths or in-memory :class:`~transferlab.data.audio.Clip` items, read them as mono
at the model's own sampling rate and fix their length to ``clip_seconds`` (centre crop or zero
padding; a random crop or placement only in training batches).

* ``resemblyzer``: the GE2E speaker encoder that the Resemblyzer package ships (3-layer LSTM over
  40 mel bands, 256-d embedding), with the package's own preprocessing: 16 kHz, volume
  normalised up to -30 dBFS, long silences removed by WebRTC voice activity detection, 1.6 s
  partial utterances whose L2-normalised embeddings are averaged and normalised again, exactly
  as ``VoiceEncoder.embed_utterance`` does, but batched.
* ``hf:<repo or folder>`` whose config is an audio model (wav2vec2, HuBERT, WavLM, AST,
  Whisper's encoder...): ``AutoFeatureExtractor`` + ``AutoModel``, mean-pooled last hidden state.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.audio import fit_length, load_waveform
from ..errors import BackboneError, require
from .base import PACKAGED, Backbone, groups_from_blocks, largest_block_list
from .hf import HFTextBackbone, card_provenance


class AudioBackbone(Backbone):
    """Shared: read, resample and fix the length of a batch of clips."""

    modality = "audio"

    def __init__(self, name: str, *, sample_rate: int, clip_seconds: float = 3.0, **kwargs: Any):
        for unused in ("image_size", "max_length"):
            kwargs.pop(unused, None)
        super().__init__(name, **kwargs)
        self.sample_rate = int(sample_rate)
        self.clip_seconds = float(clip_seconds)

    @property
    def clip_samples(self) -> int:
        return int(round(self.sample_rate * self.clip_seconds))

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        """Model-specific clean-up of a whole recording before its length is fixed."""
        return wav

    def waveforms(self, items: list, train: bool = False) -> np.ndarray:
        """(B, clip_samples) float32. In training the crop is random, drawn from torch's seeded RNG."""
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item())) if train else None
        return np.stack(
            [fit_length(self.prepare(load_waveform(x, self.sample_rate)), self.clip_samples, rng) for x in items]
        )

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        blocks = largest_block_list(encoder)
        return groups_from_blocks(encoder, blocks) if blocks is not None else [list(encoder.parameters())]


# --- resemblyzer ----------------------------------------------------------------------------


class GE2EEncoder(nn.Module):
    """Resemblyzer's VoiceEncoder network, batched over partial utterances.

    mels (B, P, F, 40) -> LSTM final hidden state of the top layer per partial (B*P, 256) ->
    ReLU(linear) -> L2 norm -> mean over the P partials -> L2 norm -> (B, 256).
    """

    def __init__(self, n_mels: int = 40, hidden: int = 256, layers: int = 3, embedding: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(n_mels, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        b, p = mels.shape[:2]
        _, (hidden, _) = self.lstm(mels.flatten(0, 1))  # hidden: (layers, B*P, H)
        partial = nn.functional.normalize(torch.relu(self.linear(hidden[-1])), dim=1, eps=1e-8)
        return nn.functional.normalize(partial.view(b, p, -1).mean(dim=1), dim=1, eps=1e-8)


def _resemblyzer():
    with warnings.catch_warnings():  # webrtcvad imports the deprecated pkg_resources
        warnings.simplefilter("ignore")
        require("webrtcvad", "audio")
        return require("resemblyzer", "audio")


class ResemblyzerBackbone(AudioBackbone):
    def __init__(self, **options: Any):
        pkg = _resemblyzer()
        self.weights = Path(pkg.__file__).parent / "pretrained.pt"
        super().__init__(
            "resemblyzer",
            sample_rate=pkg.sampling_rate,
            provenance={
                "source": "Resemblyzer 0.1.4 VoiceEncoder (GE2E speaker encoder; weights in the package)",
                "pretrained_on": "speaker verification (GE2E loss) on LibriSpeech and VoxCeleb 1 and 2 "
                "speech, mostly English, as in the Real-Time-Voice-Cloning encoder",
                "licence": "Apache-2.0",
            },
            **options,
        )
        from resemblyzer.voice_encoder import VoiceEncoder

        # fixed-length clips give fixed partial-utterance slices: computed once
        self._wav_slices, self._mel_slices = VoiceEncoder.compute_partial_slices(self.clip_samples, 1.3, 0.75)

    def _build(self, pretrained: bool) -> nn.Module:
        encoder = GE2EEncoder()
        if pretrained:
            state = torch.load(self.weights, map_location="cpu", weights_only=True)["model_state"]
            state = {k: v for k, v in state.items() if not k.startswith("similarity_")}  # GE2E training-only scalars
            encoder.load_state_dict(state)
        self.feature_dim = encoder.linear.out_features
        return encoder

    def prepare(self, wav: np.ndarray) -> np.ndarray:
        from resemblyzer.audio import normalize_volume, trim_long_silences
        from resemblyzer.hparams import audio_norm_target_dBFS

        if not np.any(wav):
            return wav  # silence: nothing to normalise (its dBFS is -inf) or to trim
        return trim_long_silences(normalize_volume(wav, audio_norm_target_dBFS, increase_only=True))

    def preprocess(self, items: list, train: bool = False) -> dict[str, torch.Tensor]:
        from resemblyzer.audio import wav_to_mel_spectrogram

        stop = self._wav_slices[-1].stop
        mels = []
        for wav in self.waveforms(items, train):
            mel = wav_to_mel_spectrogram(np.pad(wav, (0, max(0, stop - len(wav)))))  # (frames, 40)
            mels.append(np.stack([mel[s] for s in self._mel_slices]))  # (P, 160, 40)
        return {"mels": torch.from_numpy(np.stack(mels))}

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        """One group per LSTM layer (input side first), then the linear projection."""
        lstm = dict(encoder.lstm.named_parameters())
        layers = [[p for n, p in lstm.items() if n.endswith(f"_l{k}")] for k in range(encoder.lstm.num_layers)]
        return [*layers, list(encoder.linear.parameters())]

    def preprocessing_id(self) -> str:
        return f"resemblyzer|sr={self.sample_rate}|clip={self.clip_seconds}|vad+norm|partials={len(self._mel_slices)}"

    def weights_id(self) -> str:
        return f"{self.weights.name}:{self.weights.stat().st_size}"


@PACKAGED.register("resemblyzer")
def resemblyzer(**options: Any) -> Backbone:
    return ResemblyzerBackbone(**options)


# --- Hugging Face audio models --------------------------------------------------------------


def audio_config(repo_or_path: str, revision: str | None = None, trust_remote_code: bool = False):
    """The model's config when it is an audio model transformers knows, else None (not audio,
    or not loadable: the text source then reports the error)."""
    transformers = require("transformers", "text")
    from transformers.models.auto import modeling_auto

    try:
        config = transformers.AutoConfig.from_pretrained(
            repo_or_path, revision=revision, trust_remote_code=trust_remote_code
        )
    except Exception:
        return None
    audio_types = {
        *modeling_auto.MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES,
        *modeling_auto.MODEL_FOR_CTC_MAPPING_NAMES,
    }
    return config if config.model_type in audio_types else None


class PooledAudioEncoder(nn.Module):
    """audio model -> last hidden state (B, T, H) -> mean over time (B, H)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        return self.model(**batch).last_hidden_state.mean(dim=1)


class HFAudioBackbone(AudioBackbone):
    def __init__(
        self,
        repo_or_path: str,
        config,
        *,
        name: str | None = None,
        revision: str | None = None,
        trust_remote_code: bool = False,
        provenance: dict[str, str] | None = None,
        **options: Any,
    ):
        import transformers

        folder = Path(repo_or_path).expanduser()
        self.folder = folder if folder.is_dir() else None
        self.repo = str(self.folder) if self.folder else repo_or_path
        self.revision, self.trust_remote_code, self.config = revision, trust_remote_code, config
        try:
            self.extractor = transformers.AutoFeatureExtractor.from_pretrained(
                self.repo, revision=revision, trust_remote_code=trust_remote_code
            )
        except Exception as exc:
            raise BackboneError(
                f"'{repo_or_path}' is a {config.model_type} audio model but its feature extractor "
                f"(preprocessor_config.json) could not be loaded: {str(exc).splitlines()[0]}"
            ) from None
        super().__init__(
            name or f"hf:{repo_or_path}",
            sample_rate=self.extractor.sampling_rate,
            provenance={
                "source": f"Hugging Face {'folder' if self.folder else 'Hub'}: {self.repo}",
                **card_provenance(self.folder, self.repo),
                **(provenance or {}),
            },
            **options,
        )
        if revision:
            self.provenance["revision"] = revision

    weights_id = HFTextBackbone.weights_id  # the same folder stamp or Hub revision

    def _build(self, pretrained: bool) -> nn.Module:
        import transformers

        try:
            if pretrained:
                model = transformers.AutoModel.from_pretrained(
                    self.repo, revision=self.revision, trust_remote_code=self.trust_remote_code
                )
            else:
                model = transformers.AutoModel.from_config(self.config, trust_remote_code=self.trust_remote_code)
        except Exception as exc:
            raise BackboneError(f"Could not load weights of '{self.name}': {str(exc).splitlines()[0]}") from None
        if getattr(self.config, "is_encoder_decoder", False):
            model = model.get_encoder()  # Whisper-style: the audio encoder alone
        self.feature_dim = int(self.config.hidden_size if hasattr(self.config, "hidden_size") else self.config.d_model)
        return PooledAudioEncoder(model)

    def preprocess(self, items: list, train: bool = False) -> dict[str, torch.Tensor]:
        batch = self.extractor(list(self.waveforms(items, train)), sampling_rate=self.sample_rate, return_tensors="pt")
        # every clip has the same length, so there is no padding to mask
        return {k: v for k, v in batch.items() if k in ("input_values", "input_features")}

    def layer_groups(self, encoder: nn.Module) -> list[list[nn.Parameter]]:
        """[feature encoder / patch embedding] + [one group per transformer layer] + [final norm]."""
        inner = getattr(encoder.model, "encoder", encoder.model)
        blocks = getattr(inner, "layers", None) or getattr(inner, "layer", None)
        if isinstance(blocks, nn.ModuleList) and len(blocks) >= 1:
            return groups_from_blocks(encoder, blocks)
        return super().layer_groups(encoder)

    def preprocessing_id(self) -> str:
        return f"{type(self.extractor).__name__}|sr={self.sample_rate}|clip={self.clip_seconds}|pool=mean"
