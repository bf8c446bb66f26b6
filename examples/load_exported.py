"""Load a model written by ``transferlab export`` without transferlab, and predict.

Needs only torch, safetensors and numpy, plus transformers (text and CLIP backbones), torchvision or
timm (image backbones), Pillow (images). The artifact folder says everything: config.json (labels, head,
backbone architecture), preprocessing.json (tokenizer / image size, mean, std) and
model.safetensors (weights). See docs/EXPORT.md for the format.

    python examples/load_exported.py reviews-model new_reviews.csv --text-column review
    python examples/load_exported.py photos-model a.jpg b.jpg --json
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class Exported:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.config = json.loads((self.folder / "config.json").read_text())
        self.labels = self.config["labels"]
        self.head = self.config["head"]
        self.w = load_file(str(self.folder / "model.safetensors"))
        if self.config["backbone"]:
            self.prep = json.loads((self.folder / "preprocessing.json").read_text())
            self.encoder = self._encoder()

    # ---- the backbone: rebuilt from config.json, weights from model.safetensors ----
    def _encoder(self) -> torch.nn.Module:
        desc = self.config["backbone"]
        if desc["library"] == "transformers":
            import transformers

            model = transformers.AutoModel.from_config(
                transformers.AutoConfig.from_pretrained(self.folder / "backbone")
            )
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.folder / self.prep["tokenizer"])
            prefix = "encoder.transformer."
        elif desc["library"] == "torchvision":
            import torchvision

            model = torchvision.models.get_model(desc["arch"], weights=None)
            if desc.get("head_removed"):  # the ImageNet classifier was replaced by the rung's own head
                setattr(model, desc["head_removed"], torch.nn.Identity())
            prefix = "encoder.model."
        elif desc["library"] == "timm":
            import timm

            model, prefix = timm.create_model(desc["arch"], pretrained=False, num_classes=0), "encoder.model."
        elif desc["library"] == "efficientnet_lite_pytorch":  # pip install efficientnet-lite-pytorch
            from efficientnet_lite_pytorch import EfficientNet

            model = EfficientNet.from_name(desc["arch"], image_size=desc["image_size"])
            model._fc, prefix = torch.nn.Identity(), "encoder.model."
        elif desc["library"] == "clip":  # CLIP's vision tower and its projection to the shared space
            import transformers

            clip = transformers.CLIPModel(transformers.CLIPConfig.from_pretrained(self.folder / "backbone"))
            model = torch.nn.ModuleDict({"vision_model": clip.vision_model, "projection": clip.visual_projection})
            prefix = "encoder."
        else:
            raise SystemExit(f"unknown backbone library {desc['library']!r}")
        model.load_state_dict({k[len(prefix) :]: v for k, v in self.w.items() if k.startswith(prefix)})
        return model.eval()

    def _features(self, batch: list) -> torch.Tensor:
        """(B, D) features, as transferlab's encoder computed them."""
        p, library = self.prep, self.config["backbone"]["library"]
        if p["modality"] == "text":
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=p["max_length"], return_tensors="pt")
            enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            tokens = self.encoder(**enc).last_hidden_state  # (B, T, H)
            mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            if p["pooling"] == "cls":
                pooled = tokens[:, 0]
            elif p["pooling"] == "max":
                pooled = tokens.masked_fill(mask == 0, torch.finfo(tokens.dtype).min).max(dim=1).values
            else:
                pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1) if p["normalize"] else pooled
        from PIL import Image
        from torchvision.transforms import v2 as T

        size = (p["image_size"], p["image_size"])
        tf = T.Compose(
            [
                T.Resize(size, antialias=True),
                T.ToImage(),
                T.ToDtype(torch.float32, scale=True),
                T.Normalize(p["mean"], p["std"]),
            ]
        )
        x = torch.stack([tf(Image.open(path).convert("RGB")) for path in batch])
        if library == "efficientnet_lite_pytorch":
            return self.encoder.extract_features(x).mean(dim=(2, 3))
        if library == "clip":
            desc = self.config["backbone"]
            out = self.encoder["vision_model"](
                pixel_values=x, interpolate_pos_encoding=desc["interpolate_pos_encoding"]
            )
            return self.encoder["projection"](out.pooler_output)
        out = self.encoder(x)
        return out.flatten(1) if out.dim() > 2 else out

    def _batched(self, items: list, fn) -> np.ndarray:
        """Batches like the run (texts sorted by length), results in input order."""
        text = self.prep["modality"] == "text"
        order = sorted(range(len(items)), key=lambda i: len(items[i])) if text else list(range(len(items)))
        out, size = None, self.prep.get("batch_size", 32)
        with torch.inference_mode():
            for lo in range(0, len(order), size):
                idx = order[lo : lo + size]
                values = fn(self._features([items[i] for i in idx])).float().numpy()
                out = np.empty((len(items), values.shape[1]), np.float32) if out is None else out
                out[idx] = values
        return out

    # ---- the heads ----
    def predict_proba(self, items: list) -> np.ndarray:
        kind = self.head["kind"]
        if kind == "prior":
            return np.tile(self.w["prior"].double().numpy(), (len(items), 1))
        if kind == "classifier":  # LayerNorm -> (Dropout) -> Linear on the encoder's features

            def head(f):
                f = torch.nn.functional.layer_norm(f, f.shape[-1:], self.w["head.0.weight"], self.w["head.0.bias"])
                return f @ self.w["head.2.weight"].T + self.w["head.2.bias"]

            return softmax(self._batched(items, head))
        if kind == "small":  # scratch_small: a small model with its own input preparation, no backbone
            return softmax(self._small(items))
        if kind == "zero_shot":  # softmax(temperature * cosine similarity of the features and the label prompts)
            f = self._batched(items, lambda f: f).astype(np.float64)
            f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
            return softmax(self.w["temperature"].item() * (f @ self.w["label_embeddings"].double().numpy().T))
        if kind != "logreg":
            raise SystemExit(f"unknown head kind {kind!r}")
        features = self.head["features"]
        if features == "backbone":
            X = self._batched(items, lambda f: f)
        elif features == "tfidf":
            X = self._tfidf(items)
        else:
            raise SystemExit(f"this example does not compute {features!r} features; use transferlab.load_artifact")
        return self._logreg(X)

    def _small(self, items: list) -> np.ndarray:
        """scratch_small's logits: a fastText-style bag of n-grams (text) or a 3-block CNN (images)."""
        F, w = torch.nn.functional, self.w
        p = json.loads((self.folder / self.head["preprocessing"]).read_text())
        if p["kind"] == "text":  # mean of the embeddings of the known words and word pairs, then linear
            vocab = {t: i for i, t in enumerate(json.loads((self.folder / "vocabulary.json").read_text()))}
            pattern, (lo, hi) = re.compile(r"(?u)\b\w\w+\b"), p["ngram_range"]  # CountVectorizer's defaults
            rows = []
            for text in items:
                tokens = pattern.findall(text.lower())
                grams = [
                    vocab[g]
                    for n in range(lo, hi + 1)
                    for i in range(len(tokens) - n + 1)
                    if (g := " ".join(tokens[i : i + n])) in vocab
                ]
                emb = w["embed.weight"][grams].mean(0) if grams else torch.zeros(w["embed.weight"].shape[1])
                rows.append(emb)
            x = torch.stack(rows) if rows else torch.zeros((0, w["embed.weight"].shape[1]))
            return (x @ w["head.1.weight"].T + w["head.1.bias"]).double().numpy()
        if p["kind"] != "image":
            raise SystemExit(f"this example does not prepare {p['kind']!r} inputs; use transferlab.load_artifact")
        from PIL import Image

        mode = "L" if p["channels"] == 1 else "RGB"
        pixels = [
            np.array(
                Image.open(f).convert("RGB").convert(mode).resize((p["side"], p["side"]), Image.BILINEAR), np.float32
            )
            for f in items
        ]
        x = torch.from_numpy(np.stack(pixels)).reshape(len(items), p["side"], p["side"], -1).permute(0, 3, 1, 2) / 255
        x = (x - torch.tensor(p["mean"]).view(1, -1, 1, 1)) / torch.tensor(p["std"]).view(1, -1, 1, 1)
        for k in range(3):  # conv 3x3 -> BatchNorm (running statistics) -> ReLU -> max-pool 2
            conv, bn = f"features.{4 * k}", f"features.{4 * k + 1}"
            x = F.conv2d(x, w[f"{conv}.weight"], padding=1)
            x = F.batch_norm(x, w[f"{bn}.running_mean"], w[f"{bn}.running_var"], w[f"{bn}.weight"], w[f"{bn}.bias"])
            x = F.max_pool2d(F.relu(x), 2, ceil_mode=True)
        return (x.mean(dim=(2, 3)) @ w["head.1.weight"].T + w["head.1.bias"]).double().numpy()

    def _logreg(self, X: np.ndarray) -> np.ndarray:
        w = {k: v.numpy() for k, v in self.w.items() if k.startswith(("scaler.", "logreg."))}
        if "scaler.mean" in w:
            X = np.array(X, copy=True)
            X -= w["scaler.mean"]  # in place, in the features' dtype, as scikit-learn's StandardScaler does
            X /= w["scaler.scale"]
        proba = softmax(X @ w["logreg.coef"].T + w["logreg.intercept"])
        out = np.zeros((len(X), len(self.labels)))
        out[:, w["logreg.classes"]] = proba  # classes never seen in training keep probability 0
        return out

    def _tfidf(self, texts: list) -> np.ndarray:
        """scikit-learn's TfidfVectorizer (word n-grams, sublinear tf, l2 norm) with the saved vocabulary and idf."""
        s = json.loads((self.folder / "tfidf.json").read_text())
        if (s["analyzer"], s["binary"], s["norm"], s["use_idf"], s["stop_words"], s["strip_accents"]) != (
            "word",
            False,
            "l2",
            True,
            None,
            None,
        ):
            raise SystemExit(
                "this example handles only the TF-IDF settings transferlab uses; use transferlab.load_artifact"
            )
        vocab = {t: i for i, t in enumerate(json.loads((self.folder / "vocabulary.json").read_text()))}
        idf, pattern = self.w["tfidf.idf"].double().numpy(), re.compile(s["token_pattern"])
        lo, hi = s["ngram_range"]
        X = np.zeros((len(texts), len(vocab)))
        for r, text in enumerate(texts):
            tokens = pattern.findall(text.lower() if s["lowercase"] else text)
            grams = Counter(" ".join(tokens[i : i + n]) for n in range(lo, hi + 1) for i in range(len(tokens) - n + 1))
            for gram, tf in grams.items():
                if gram in vocab:
                    X[r, vocab[gram]] = (1 + np.log(tf) if s["sublinear_tf"] else tf) * idf[vocab[gram]]
            norm = np.linalg.norm(X[r])
            X[r] /= norm if norm > 0 else 1
        return X


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("artifact")
    ap.add_argument("inputs", nargs="+", help="one CSV of texts, or image files")
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--json", action="store_true", help="print [{predicted, proba}] as JSON")
    args = ap.parse_args()
    model = Exported(args.artifact)
    if args.inputs[0].endswith(".csv"):
        with open(args.inputs[0], newline="", encoding="utf-8") as fh:
            items = [row[args.text_column] for row in csv.DictReader(fh)]
    else:
        items = args.inputs
    proba = model.predict_proba(items)
    rows = [{"predicted": model.labels[int(p.argmax())], "proba": p.tolist()} for p in proba]
    if args.json:
        json.dump(rows, sys.stdout)
        return
    writer = csv.writer(sys.stdout)
    writer.writerow(["predicted", *(f"p_{label}" for label in model.labels)])
    for row in rows:
        writer.writerow([row["predicted"], *(f"{p:.6f}" for p in row["proba"])])


if __name__ == "__main__":
    main()
