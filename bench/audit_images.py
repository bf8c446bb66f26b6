"""The image audit's near-duplicate confirmation at full size: grey copies kept from hashing vs
decoded again for each chunk of candidates, and the whole audit against its plan.

On all 10,000 Animal-MNIST images (28-pixel silhouettes: unrelated pictures of one class share
most of their hash bits, so each image is a candidate in many hits), in one process:

* the hashing pass (``images.signatures``, which now also makes the grey copies);
* the confirmation of every hit (``images.near_pairs``) with the kept copies, and with the items
  (each chunk of 20,000 hits decodes its images again: what the audit did before), alternating;
  the pairs must be identical;
* ``transferlab.audit`` on the same data: the audit stage's planned seconds against its actual.

    python bench/audit_images.py [--repeats 2]
Writes bench/results/audit_images.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from run_all import alternate, median, save

from transferlab.auditing.matching import Matcher
from transferlab.auditing.matching import images as im
from transferlab.demo import demo_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    ds = demo_data("image")
    items, labels = ds.items, np.array(ds.labels)
    start = time.perf_counter()
    _, phash, grays = im.signatures(items)
    hashing = time.perf_counter() - start
    m = Matcher()
    threshold, median_corr = im.calibrated_threshold(
        grays, labels, m.image_correlation_low, m.image_correlation_high, m.image_shape_reference
    )
    found = {}

    def run(source):
        def go():
            found[id(source)] = im.near_pairs(source, phash, m.image_phash_bits, threshold)

        return go

    times, _ = alternate({"kept grey copies": run(grays), "decoded again per chunk": run(items)}, args.repeats)
    same = all(np.array_equal(a, b) for a, b in zip(found[id(grays)], found[id(items)]))
    n = len(phash)
    hits = len(im.candidate_hits(phash, m.image_phash_bits)[0])

    import tempfile

    import transferlab

    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        r = transferlab.audit(ds, out=f"{work}/a", quiet=True)
        audit_wall = time.perf_counter() - start
    stage = next(s for s in r["plan"]["stages"] if s["name"] == "audit")
    kept, decoded = median(times["kept grey copies"]), median(times["decoded again per chunk"])
    payload = {
        "images": n,
        "hits": hits,
        "threshold": threshold,
        "same_class_median_correlation": round(median_corr, 3),
        "near_pairs": len(found[id(grays)][0]),
        "identical_pairs": bool(same),
        "hashing_seconds": round(hashing, 2),
        "confirm_seconds": {name: [round(t, 2) for t in ts] for name, ts in times.items()},
        "confirm_speedup": round(decoded / kept, 2),
        "audit": {
            "wall_seconds": round(audit_wall, 1),
            "planned": stage["seconds"],
            "actual": stage.get("actual_seconds"),
            "how": stage["how"],
        },
    }
    save("audit_images", payload)
    print(payload)


if __name__ == "__main__":
    main()
