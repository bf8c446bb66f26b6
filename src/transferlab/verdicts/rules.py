"""The verdict rules. Each is registered under its code and returns zero or more verdicts."""

from __future__ import annotations

import numpy as np

from ..formats import format_rate
from . import RULES, VerdictContext, test_predictions, verdict

GAP = 0.15  # train - validation metric gap that counts as overfitting
DROP = 0.05  # validation fall after unfreezing that counts as forgetting
COST_RATIO = 10  # fine-tuning costing this many times the frozen rung must earn it


def _fmt(c: dict) -> str:
    return f"{c['delta']:+.3f} [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}], p={c['p_value']:.3f}"


def _outcome(c: dict) -> str:
    """What a paired comparison (a - b) shows: "better", "worse" or "within noise". Every message
    that describes a comparison takes its words from this, so "within noise" is never printed for
    a significant difference, nor "beats" for one that is not."""
    if not c["significant"]:
        return "within noise"
    return "better" if c["delta"] > 0 else "worse"


@RULES.register("transfer")
def transfer(ctx: VerdictContext) -> list[dict]:
    """negative_transfer or transfer_helped: the best transfer rung against the best control, both
    chosen on validation and then compared on test (choosing on test would favour whichever side
    the test's noise flattered)."""
    transfer_rungs, controls = ctx.declared(role="transfer"), ctx.declared(role="control")
    if not transfer_rungs or not controls or ctx.test_problem is not None:
        return []
    best = max(transfer_rungs, key=ctx.val_score)
    control = max(controls, key=ctx.val_score)
    c = ctx.compare(best, control)
    names = [best["name"], control["name"]]
    evidence = {
        "comparison": c,
        "chosen_on": "validation",
        "validation": {r["name"]: ctx.val_score(r) for r in (best, control)},
    }
    outcome = _outcome(c)
    if outcome == "better":
        return [
            verdict(
                "transfer_helped",
                "info",
                names,
                f"Transfer helped: {best['name']}, the best transfer rung on validation, beats "
                f"{control['name']}, the best control, on test {ctx.metric} by {_fmt(c)}.",
                "Keep the pretrained backbone; compare the transfer rungs' costs to pick one.",
                **evidence,
            )
        ]
    if outcome == "worse":
        message = (
            f"Negative transfer: {best['name']}, the best transfer rung on validation, is worse than "
            f"{control['name']}, the best control, on test ({ctx.metric} {_fmt(c)})."
        )
    else:
        message = (
            f"No evidence that transfer helps: {best['name']}, the best transfer rung on validation, is "
            f"within noise of {control['name']}, the best control, on test ({ctx.metric} {_fmt(c)})."
        )
    return [
        verdict(
            "negative_transfer",
            "error" if outcome == "worse" else "warning",
            names,
            message,
            "Try a backbone pretrained on data closer to yours, or keep the cheaper control.",
            **evidence,
        )
    ]


def _trained_vs_frozen(ctx: VerdictContext):
    """(a rung that trains the backbone: finetune, full, lora..., the frozen rung of the same backbone or None)."""
    frozen = {r["backbone"]: r for r in ctx.by_strategy("frozen")}
    return [(r, frozen.get(r["backbone"])) for r in ctx.declared(trains_backbone=True)]


@RULES.register("forgetting")
def forgetting(ctx: VerdictContext) -> list[dict]:
    """catastrophic_forgetting: training the backbone made it worse than leaving it frozen; the
    message says which learning rates were tried and whether a lower one avoided it."""
    out = []
    for r, base in _trained_vs_frozen(ctx):
        evidence: dict = {}
        if base is not None:
            c = ctx.compare(r, base)
            if c["significant"] and c["delta"] < 0:
                evidence["comparison"] = c
        fall = _val_fall_after_unfreezing(r)
        if fall is not None:
            evidence["validation_fall"] = fall
        if not evidence:
            continue
        what = []
        if "comparison" in evidence:
            what.append(f"it is worse than {base['name']} on test ({ctx.metric} {_fmt(evidence['comparison'])})")
        if "validation_fall" in evidence:
            f = evidence["validation_fall"]
            kept = (
                f" (early stopping kept epoch {f['best_epoch']} at {f['best']:.3f})"
                if f["best"] >= f["before"] - DROP
                else ""
            )
            what.append(
                f"validation {ctx.metric} fell from {f['before']:.3f} to {f['after']:.3f} once the backbone "
                f"trained{kept}"
            )
        rates = _rates_evidence(r, _reference(r, base, ctx.metric))
        evidence["learning_rates"] = rates
        rising = _still_rising(r)
        if rising:
            evidence["still_rising"] = rising
        out.append(
            verdict(
                "catastrophic_forgetting",
                "warning",
                [r["name"]],
                f"{r['name']} shows catastrophic forgetting: {'; '.join(what)}. "
                f"{_rates_sentence(rates, ctx.metric)}{_rising_sentence(rising)}",
                "Lower the backbone learning rate (--lr-factors with smaller factors, --top-lr-ratio, "
                "--bottom-lr-ratio), unfreeze more gradually, or keep the frozen rung.",
                **evidence,
            )
        )
    return out


def _val_fall_after_unfreezing(rung: dict) -> dict | None:
    """finetune only: epoch 0 is the warmed-up head on the frozen backbone, the reference. It is a
    fall when training the backbone ended more than DROP below it: a dip at unfreezing that the rung
    recovered from is the shock of new trainable layers, not forgetting. The evidence names the last
    score, the lowest point and its epoch, the best epoch after unfreezing (the one early stopping
    keeps) and the learning rate."""
    curves = rung.get("curves") or {}
    val = curves.get("val_metric") or []
    if len(val) < 2 or (curves.get("phase") or [""])[0] != "head warm-up":
        return None
    before, after = val[0], val[-1]
    if before - after <= DROP:
        return None
    epochs = curves.get("epoch") or list(range(len(val)))
    lowest, best = min(val[1:]), max(val[1:])
    fall = {
        "before": before,
        "after": after,
        "lowest": lowest,
        "epoch": epochs[val.index(lowest, 1)],
        "best": best,
        "best_epoch": epochs[val.index(best, 1)],
    }
    lr = (rung.get("chosen") or {}).get("lr")
    return {**fall, "lr": lr} if lr is not None else fall


def _still_rising(rung: dict) -> list[float] | None:
    """The validation curve, when its last epoch was its best and it gained more than DROP since the
    first: the rung may be under-trained in this budget rather than forgetting."""
    val = [v for v in (rung.get("curves") or {}).get("val_metric") or [] if isinstance(v, (int, float))]
    if len(val) >= 2 and val[-1] >= max(val) and val[-1] - val[0] > DROP:
        return val
    return None


def _rising_sentence(val: list[float] | None) -> str:
    if not val:
        return ""
    return (
        f" Its validation score was still rising at the last epoch ({', '.join(f'{v:.3f}' for v in val)}): "
        f"it may be under-trained in this budget rather than forgetting; more epochs or a higher rate may close "
        f"the gap."
    )


def _reference(rung: dict, frozen: dict | None, metric: str) -> float | None:
    """The validation score training the backbone must keep: finetune's warmed-up head (epoch 0),
    otherwise the frozen rung of the same backbone."""
    curves = rung.get("curves") or {}
    if (curves.get("phase") or [""])[0] == "head warm-up" and curves.get("val_metric"):
        return float(curves["val_metric"][0])
    value = ((frozen or {}).get("val") or {}).get(metric) or {}
    return float(value["mean"]) if "mean" in value else None


def _rates_evidence(rung: dict, reference: float | None) -> dict:
    """Every learning rate the rung tried with its validation score after the screen, and whether
    a rate below the kept one stayed within DROP of the reference."""
    chosen = rung.get("chosen") or {}
    trials = chosen.get("lr_trials") or []
    tried = [{"lr": t["lr"], "val_metric": t["screen_val_metric"], "chosen": bool(t.get("chosen"))} for t in trials]
    kept = chosen.get("lr")
    lower = [t for t in tried if kept is not None and t["lr"] < kept]
    avoided = None
    if lower and reference is not None:
        avoided = any(t["val_metric"] >= reference - DROP for t in lower)
    return {"kept": kept, "tried": tried, "reference": reference, "lower_rate_avoided_it": avoided}


def _rates_sentence(rates: dict, metric: str) -> str:
    """What the evidence says about the learning rates, in words."""
    kept, tried = rates["kept"], rates["tried"]
    at = f" ({format_rate(kept)})" if kept is not None else ""
    if len(tried) < 2:
        return (
            f"Only one learning rate was tried{at}; whether another one avoids this is unknown "
            f"(try --lr-factors 10,1,0.1)."
        )
    screen = [t for t in tried if not t["chosen"]]
    kept_score = next((t["val_metric"] for t in tried if t["chosen"]), None)
    listing = ", ".join(f"at {format_rate(t['lr'])} {t['val_metric']:.3f}" for t in screen)
    head = (
        f"Learning rates tried, validation {metric} after the screen: at {format_rate(kept)} (kept) {kept_score:.3f}, "
        f"{listing}."
    )
    if not any(t["lr"] < kept for t in tried):
        return head + f" No rate below {format_rate(kept)} was tried; add a smaller factor to --lr-factors."
    ref = rates["reference"]
    versus = f" (the reference to keep: {ref:.3f})" if ref is not None else ""
    if rates["lower_rate_avoided_it"]:
        return head + f" A lower rate stayed near the reference{versus}, but scored below the kept one on validation."
    return head + f" No lower rate avoided it{versus}."


@RULES.register("fit")
def fit_quality(ctx: VerdictContext) -> list[dict]:
    """overfitting (the train-validation gap widens while validation shows learning) and underfitting
    (validation never beats the majority guess: nothing learned carries over, however training went)."""
    out = []
    majority_share = float(np.bincount(ctx.y_train).max() / len(ctx.y_train))
    scored = {r["name"] for r in ctx.scored()}
    for r in ctx.rungs:
        c = r.get("curves") or {}
        train, val = c.get("train_metric") or [], c.get("val_metric") or []
        if len(train) < 2:
            continue
        gaps = [t - v for t, v in zip(train, val)]
        learned = max(val) > majority_share + 0.05  # validation shows something beyond the majority guess
        if learned and gaps[-1] > GAP and gaps[-1] > gaps[0] + DROP:
            out.append(
                verdict(
                    "overfitting",
                    "warning",
                    [r["name"]],
                    f"{r['name']} overfits: train {c.get('metric', 'metric')} {train[-1]:.3f} vs validation "
                    f"{val[-1]:.3f} at the last epoch, a gap that grew from {gaps[0]:.3f}.",
                    "More data or augmentation, fewer epochs, stronger weight decay, or fewer trainable "
                    "layers; early stopping restored the best epoch.",
                    gaps=gaps,
                )
            )
        if max(val) <= majority_share + 0.02 and r["name"] in scored:
            out.append(
                verdict(
                    "underfitting",
                    "warning",
                    [r["name"]],
                    f"{r['name']} underfits: its best validation {c.get('metric', 'metric')} "
                    f"({max(val):.3f}) is no better than always predicting the majority class "
                    f"({majority_share:.3f}); training reached {max(train):.3f}.",
                    "Train longer or with a higher learning rate; from scratch this architecture may "
                    "need far more data.",
                    train_metric=train,
                    val_metric=val,
                    majority_share=majority_share,
                )
            )
    return out


@RULES.register("imbalance")
def imbalance(ctx: VerdictContext) -> list[dict]:
    """imbalance: the most accurate rung is not more accurate than the majority baseline (within
    noise, or less accurate), or minority classes barely recalled."""
    majority = ctx.by_strategy("majority")
    scored = ctx.scored()
    if not scored:
        return []
    best = max(scored, key=lambda r: r["test"]["accuracy"]["mean"])
    counts = np.bincount(ctx.y_train, minlength=len(ctx.classes))
    minority = [ctx.classes[i] for i in np.flatnonzero(counts < counts.max() / 3)]
    thin = {t["class"] for t in (ctx.test_problem or {}).get("thin", [])}  # too few to estimate a recall
    low_recall = {
        k: v["recall"]
        for k, v in best["test"].get("per_class", {}).items()
        if k in minority and k not in thin and v["support"] > 0 and v["recall"] < 0.5
    }
    versus = _versus_majority(ctx, best, majority[0]) if majority and ctx.test_problem is None else None
    if not low_recall and versus is None:
        return []
    parts = []
    if versus is not None:
        relation = "is within noise of" if _outcome(versus) == "within noise" else "is less accurate than"
        parts.append(
            f"the most accurate rung, {best['name']}, {relation} always predicting the majority class "
            f"(accuracy {_fmt(versus)})"
        )
    if low_recall:
        parts.append(
            "minority classes are rarely found: " + ", ".join(f"{k} recall {v:.2f}" for k, v in low_recall.items())
        )
    return [
        verdict(
            "imbalance",
            "warning",
            [best["name"]],
            f"Imbalance: {'; '.join(parts)}.",
            "Judge by balanced accuracy and macro-F1, not accuracy; collect more minority examples or "
            "weight the classes.",
            minority_classes=minority,
            low_recall=low_recall,
            versus_majority=versus,
        )
    ]


def _versus_majority(ctx: VerdictContext, best: dict, majority: dict) -> dict | None:
    """The accuracy comparison best - majority when best is not significantly more accurate, else None."""
    from ..evaluation import paired_bootstrap

    c = paired_bootstrap(
        ctx.y_test, test_predictions(best), test_predictions(majority), "accuracy", n_classes=len(ctx.classes)
    )
    return None if _outcome(c) == "better" else {"a": best["name"], "b": majority["name"], **c}


@RULES.register("within_noise")
def within_noise(ctx: VerdictContext) -> list[dict]:
    """within_noise: the two best rungs cannot be told apart on this test set."""
    scored = sorted(ctx.scored(), key=ctx.score, reverse=True)
    if len(scored) < 2 or ctx.test_problem is not None:
        return []
    c = ctx.compare(scored[0], scored[1])
    if _outcome(c) != "within noise":
        return []
    return [
        verdict(
            "within_noise",
            "info",
            [scored[0]["name"], scored[1]["name"]],
            f"{scored[0]['name']} and {scored[1]['name']} are within noise of each other ({ctx.metric} {_fmt(c)}).",
            "Prefer the cheaper one; a larger test set would be needed to separate them.",
            comparison=c,
        )
    ]


@RULES.register("finetune_cost")
def finetune_cost(ctx: VerdictContext) -> list[dict]:
    """finetune_not_worth_cost: training the backbone costs far more than frozen and does not beat it."""
    out: list[dict] = []
    if ctx.test_problem is not None:
        return out
    for r, base in _trained_vs_frozen(ctx):
        if base is None:
            continue
        base_cost = base["cost"]["fit_seconds"] + base["cost"].get("extract_seconds", 0.0)
        ratio = r["cost"]["fit_seconds"] / max(base_cost, 1e-3)
        c = ctx.compare(r, base)
        outcome = _outcome(c)
        if ratio >= COST_RATIO and outcome != "better":
            relation = "is worse than it" if outcome == "worse" else "is within noise of it"
            out.append(
                verdict(
                    "finetune_not_worth_cost",
                    "info",
                    [r["name"], base["name"]],
                    f"{r['name']} costs {ratio:.0f}x the fit time of {base['name']} and {relation} "
                    f"({ctx.metric} {_fmt(c)}).",
                    f"Use {base['name']} unless more data or epochs change this.",
                    comparison=c,
                    cost_ratio=ratio,
                )
            )
    return out


@RULES.register("zero_shot")
def zero_shot_enough(ctx: VerdictContext) -> list[dict]:
    """no_training_needed: a rung that learns nothing from the training labels (zero_shot) is not
    beaten by the rung that does and scores best on validation."""
    out = []
    scored = {r["name"] for r in ctx.scored()}
    trained = [r for r in ctx.declared(learns_from_labels=True) if r["name"] in scored]
    if not trained or ctx.test_problem is not None:
        return []
    best = max(trained, key=ctx.val_score)
    for z in (r for r in ctx.declared(learns_from_labels=False) if r["name"] in scored):
        c = ctx.compare(best, z)
        outcome = _outcome(c)
        if outcome == "better":
            continue
        relation = "is worse than it" if outcome == "worse" else "is within noise of it"
        out.append(
            verdict(
                "no_training_needed",
                "info",
                [z["name"], best["name"]],
                f"{z['name']} uses no training labels, and the trained rung best on validation, "
                f"{best['name']}, {relation} on test ({ctx.metric} {_fmt(c)}).",
                "Consider the zero-shot model: no training, and new labels only need a name or a description.",
                comparison=c,
            )
        )
    return out


@RULES.register("leakage")
def leakage(ctx: VerdictContext) -> list[dict]:
    """leakage: the audit found the same or nearly the same examples on both sides of the split."""
    hits = [
        f
        for f in ctx.audit
        if f.get("severity") == "error"
        and f.get("count", 0) > 0
        and f.get("check") in ("exact_duplicates", "near_duplicates", "group_overlap")
    ]
    if not hits:
        return []
    total = sum(f["count"] for f in hits)
    found = f"{total} cross-split duplicates or shared groups ({', '.join(f['check'] for f in hits)})"
    evidence = {
        "findings": [{k: f[k] for k in ("check", "count", "message")} for f in hits],
        "policy": ctx.leakage_policy,
    }
    if ctx.leakage_policy == "dedupe" and not any(f["check"] == "group_overlap" for f in hits):
        if ctx.dedupe.get("confirmed") and ctx.dedupe.get("over_max_share"):
            return [_confirmed_dedupe(ctx, found, evidence)]
        return [
            verdict(
                "leakage",
                "info",
                [],
                f"Leakage found and removed: {found}; the training and validation "
                "copies were dropped before training, so the test scores are not inflated by them.",
                "Remove the copies from your files too, so other tools do not see them.",
                **evidence,
            )
        ]
    return [
        verdict(
            "leakage",
            "error",
            [],
            f"Leakage: {found} were kept; test scores may be inflated.",
            "Rerun with --on-leakage dedupe, or fix the split (e.g. --group-column).",
            **evidence,
        )
    ]


def _confirmed_dedupe(ctx: VerdictContext, found: str, evidence: dict) -> dict:
    """Dedupe removed more than its share at the user's word: say how much, and that the test scores
    are clean only if the removed pairs were real copies."""
    removed, share = ctx.dedupe.get("removed", {}), ctx.dedupe.get("share", {})
    words = {"train": "training", "val": "validation"}
    cut = " and ".join(
        f"{removed[s]} {words[s]} example{'' if removed[s] == 1 else 's'} ({share.get(s, 0):.1%} of the split)"
        for s in ("train", "val")
        if removed.get(s)
    )
    return verdict(
        "leakage",
        "warning",
        [],
        f"Leakage found and removed: {found}; dropped before training: {cut}, more than the "
        f"{ctx.dedupe.get('max_share', 0) * 100:g}% removed without asking, as confirmed "
        "(--confirm-dedupe). The test scores are free of these copies only if the pairs are real copies; "
        "so large a cut also leaves less to train on.",
        "Look at the removed pairs in the report; if some are not copies, rerun with --on-leakage warn "
        "or fix the files.",
        **evidence,
        dedupe=ctx.dedupe,
    )


@RULES.register("learning_rate")
def learning_rate(ctx: VerdictContext) -> list[dict]:
    """learning_rate_too_high (or _too_low): the recipe's own learning rate (factor 1) did more than
    DROP worse on validation after the screen than a lower (higher) rate tried beside it, which the
    rung then kept. Validation only: the choice and this verdict never look at test labels."""
    out = []
    frozen = {r["backbone"]: r for r in ctx.by_strategy("frozen")}
    for r in ctx.declared(trains_backbone=True):
        trials = (r.get("chosen") or {}).get("lr_trials") or []
        recipe = next((t for t in trials if t.get("factor") == 1), None)
        kept = next((t for t in trials if t.get("chosen")), None)
        if recipe is None or kept is None or kept is recipe:
            continue
        if kept["screen_val_metric"] - recipe["screen_val_metric"] <= DROP:
            continue
        high = kept["lr"] < recipe["lr"]
        reference = _reference(r, frozen.get(r["backbone"]), ctx.metric)
        below = reference is not None and recipe["screen_val_metric"] < reference - DROP
        ref = f", below the {reference:.3f} it had to keep" if below else ""
        epochs = recipe.get("screen_epochs", 1)
        code = "learning_rate_too_high" if high else "learning_rate_too_low"
        why = (
            " At the recipe's rate the model was not yet trained in this budget: compared with the frozen "
            "rung that would have looked like forgetting."
            if below and not high
            else ""
        )
        out.append(
            verdict(
                code,
                "warning" if high else "info",
                [r["name"]],
                f"The learning rate {format_rate(recipe['lr'])} is too {'high' if high else 'low'} for {r['name']}: after "
                f"{epochs} epoch(s) at {format_rate(recipe['lr'])} its validation {ctx.metric} was "
                f"{recipe['screen_val_metric']:.3f}{ref}; at {format_rate(kept['lr'])} it reached "
                f"{kept['screen_val_metric']:.3f}, "
                f"so the rung kept {format_rate(kept['lr'])} (best validation {kept['val_metric']:.3f}).{why}",
                f"Use {format_rate(kept['lr'])} for this backbone and data (--lr-factors {kept['factor']:g}); these scores are "
                f"on validation, so the test scores stay held out.",
                **{"too_high" if high else "too_low": {"lr": recipe["lr"], "val_metric": recipe["screen_val_metric"]}},
                fixed_by={
                    "lr": kept["lr"],
                    "val_metric": kept["screen_val_metric"],
                    "best_val_metric": kept["val_metric"],
                },
                reference=reference,
                tried=[{"lr": t["lr"], "val_metric": t["screen_val_metric"]} for t in trials],
            )
        )
    return out
