"""Verdicts, the recommendation and audit findings, as values the template only lays out.

These are what a reader acts on, so each shows its message, what to do and the evidence behind
it. Their fields come from rules and checks that may grow, so unknown keys are still shown, as
escaped text. Audit thumbnails are the one place user data becomes an ``<img>``: only a base64
PNG data URI passes, so a crafted ``javascript:`` or ``data:text/html`` source never does.
"""

from __future__ import annotations

import re

from .formatting import (
    compact_json,
    comparison_pair,
    display,
    fmt_comparison,
    fmt_int,
    fmt_num,
    fmt_within_noise,
    is_comparison,
    is_number,
    severity,
    severity_rank,
)

TEXT_KEYS = ("message", "text", "verdict", "summary", "claim")
VERDICT_KEYS = {"code", "severity", "rungs", "action", "evidence"}
PNG_DATA_URI = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")
SIDE_KEYS = ("index", "split", "origin", "label", "text", "thumbnail")
KINDS = {"exact": "identical", "near": "nearly identical"}


def by_severity(items: list[dict]) -> list[dict]:
    """Errors first, then warnings, then the rest, keeping the given order within each."""
    return sorted(items, key=lambda item: severity_rank(item["severity"]))


def _evidence(evidence: dict) -> tuple[list[dict], list[tuple[str, str]]]:
    """Paired comparisons as one readable line each; any other evidence as compact JSON."""
    comparisons, details = [], []
    for key, value in evidence.items():
        if is_comparison(value):
            comparisons.append(
                {
                    "label": None if key == "comparison" else str(key).replace("_", " "),
                    "pair": comparison_pair(value),
                    "text": fmt_comparison(value),
                }
            )
        elif value is not None:
            details.append((str(key), compact_json(value)))
    return comparisons, details


def _links(names, anchors: dict[str, str]) -> list[dict]:
    names = names if isinstance(names, list) else [names] if names else []
    return [{"name": display(name), "href": anchors.get(display(name))} for name in names]


def _verdict_view(item, anchors: dict[str, str]) -> dict:
    """A verdict dict, or the plain string older results files hold."""
    if not isinstance(item, dict):
        item = {"message": item}
    key = next((k for k in TEXT_KEYS if k in item), None)
    evidence = item.get("evidence")
    evidence = dict(evidence) if isinstance(evidence, dict) else {"evidence": evidence}
    evidence.update({k: v for k, v in item.items() if k != key and k not in VERDICT_KEYS})
    comparisons, details = _evidence(evidence)
    return {
        "severity": severity(item.get("severity")),
        "code": display(item["code"]) if item.get("code") else None,
        "message": display(item[key]) if key else "",
        "action": display(item["action"]) if item.get("action") else None,
        "rungs": _links(item.get("rungs"), anchors),
        "comparisons": comparisons,
        "details": details,
    }


def verdict_views(verdicts, anchors: dict[str, str]) -> list[dict]:
    return by_severity([_verdict_view(v, anchors) for v in verdicts or []])


def recommendation_view(recommendation, anchors: dict[str, str]) -> dict | None:
    """The recommended rung with the validation comparisons that chose it; or, when the run
    recommends nothing (a test or validation split that cannot compare rungs), why not."""
    if not isinstance(recommendation, dict):
        return None
    if not recommendation.get("rung"):
        if not recommendation.get("why"):
            return None
        return {"rung": None, "href": None, "why": display(recommendation["why"]), "noise": None, "comparisons": []}
    rung = display(recommendation["rung"])
    return {
        "rung": rung,
        "href": anchors.get(rung),
        "why": display(recommendation["why"]) if recommendation.get("why") else None,
        "noise": fmt_within_noise(recommendation.get("within_noise_of_best")),
        "comparisons": _validation_comparisons(recommendation.get("evidence")),
    }


def _validation_comparisons(evidence) -> list[dict]:
    """Each comparison the recommendation made: a costlier rung against the choice at that point."""
    out = []
    for c in evidence if isinstance(evidence, list) else []:
        if is_comparison(c):
            outcome = {"replaced": "replaced it", "kept": "kept the cheaper"}.get(c.get("outcome"), "")
            out.append({"pair": comparison_pair(c), "text": fmt_comparison(c), "outcome": outcome})
    return out


def safe_thumbnail(value) -> str | None:
    """The value if it is a base64 PNG data URI (nothing a browser could run), else None."""
    return value if isinstance(value, str) and PNG_DATA_URI.fullmatch(value) else None


def _side(side: dict) -> dict:
    """One example of a pair: where it is, its label, and a text snippet or a thumbnail."""
    facts = [display(side[k]) for k in ("split", "label") if side.get(k) is not None]
    if is_number(side.get("index")):
        facts.append(f"#{side['index']:.0f}")
    extra = {k: v for k, v in side.items() if k not in SIDE_KEYS}
    return {
        "origin": display(side["origin"]) if side.get("origin") is not None else None,
        "facts": " · ".join(facts),
        "text": display(side["text"]) if side.get("text") is not None else None,
        "thumbnail": safe_thumbnail(side.get("thumbnail")),
        "extra": _key_values(extra) if extra else None,
    }


def _match(example: dict) -> str:
    """How the two examples of a pair are alike: the kind of match, its similarity, its method."""
    kind = example.get("kind")
    parts = [display(KINDS.get(kind, kind) if isinstance(kind, str) else kind)] if kind else []
    if is_number(example.get("similarity")):
        parts.append(f"similarity {fmt_num(example['similarity'])}")
    parts += [f"{k}: {display(v)}" for k, v in example.items() if k not in ("a", "b", "kind", "similarity")]
    return " · ".join(parts)


def _key_values(item: dict) -> str:
    return " · ".join(f"{k}: {display(v)}" for k, v in item.items())


def _example_view(example) -> dict:
    """A pair of examples side by side, or any other example shape as key/value text."""
    if isinstance(example, dict) and isinstance(example.get("a"), dict) and isinstance(example.get("b"), dict):
        return {"pair": True, "a": _side(example["a"]), "b": _side(example["b"]), "match": _match(example)}
    text = _key_values(example) if isinstance(example, dict) else display(example)
    return {"pair": False, "text": text}


def _finding_view(finding) -> dict:
    if not isinstance(finding, dict):
        finding = {"message": finding}
    examples = [_example_view(e) for e in finding.get("examples") or []]
    level = severity(finding.get("severity"))
    known = {"check", "severity", "count", "message", "examples"}
    return {
        "check": display(finding["check"]) if finding.get("check") else None,
        "severity": level,
        "count": fmt_int(finding["count"]) if is_number(finding.get("count")) and finding["count"] else None,
        "message": display(finding.get("message")) if finding.get("message") is not None else "",
        "pairs": [e for e in examples if e["pair"]],
        "others": [e["text"] for e in examples if not e["pair"]],
        "open": level in ("error", "warning"),
        "extra": _key_values({k: v for k, v in finding.items() if k not in known}),
    }


def finding_views(findings) -> list[dict]:
    return by_severity([_finding_view(f) for f in findings or []])


def removed_view(audit) -> dict | None:
    """The copies ``--on-leakage dedupe`` removed, each next to the example it duplicated, so a
    reader can see that they were copies (and not a matcher gone wrong)."""
    if not isinstance(audit, dict) or not audit.get("removed"):
        return None
    dedupe = audit.get("dedupe") if isinstance(audit.get("dedupe"), dict) else {}
    removed = dedupe.get("removed") if isinstance(dedupe.get("removed"), dict) else {}
    share = dedupe.get("share") if isinstance(dedupe.get("share"), dict) else {}
    words = {"train": "training", "val": "validation"}
    counts = [
        f"{fmt_int(removed[s])} {words.get(s, display(s))} example{'' if removed[s] == 1 else 's'}"
        + (f" ({share[s]:.1%} of the split)" if is_number(share.get(s)) else "")
        for s in removed
        if is_number(removed[s]) and removed[s]
    ]
    pairs = [_example_view(e) for e in audit["removed"]]
    pairs = [p for p in pairs if p["pair"]]
    total = sum(removed[s] for s in removed if is_number(removed[s])) or len(pairs)
    return {
        "summary": " and ".join(counts) if counts else None,
        "shown": len(pairs),
        "total": fmt_int(total),
        "more": total > len(pairs),
        "confirmed": bool(dedupe.get("confirmed")) and bool(dedupe.get("over_max_share")),
        "pairs": pairs,
    }
