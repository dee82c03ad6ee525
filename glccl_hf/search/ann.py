"""Upkeep of stage 1's approximate index: when the IVF-PQ frame index is built, extended or retrained, and its file."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import cascade
from .segment_store import SegmentStore


def due(store: SegmentStore) -> bool:
    """Whether the IVF-PQ frame index needs work: the collection has reached `ann_threshold` segments, and those
    added since the index's last update (all of them when there is none) number at least half the threshold."""
    manifest = store.manifest
    live = store.live_ids()
    threshold = manifest["ann_threshold"]
    ann = manifest["ann"]
    tail = live[live >= (ann["covered"] if ann else 0)]
    return len(live) >= threshold and not (ann and len(tail) < threshold // 2)


def update(store: SegmentStore, *, retrain: bool = False) -> dict[str, Any] | None:
    """Bring the IVF-PQ frame index over the live segments of `store` up to date and write it beside the index;
    returns its manifest entry (None for an empty collection). The segments added since its last update are added
    to it; it is retrained from scratch when there is none, when the collection has grown four-fold since its
    training, or with `retrain`."""
    manifest = store.manifest
    live = store.live_ids()
    if not len(live):
        return None
    ann = manifest["ann"]
    frames = int(store.num_frames[live].sum())
    if ann and not retrain and len(live) <= 4 * ann["trained_on"]:
        covered = ann["covered"]
        index, trained_on, add = store.ann(), ann["trained_on"], live[live >= covered]
    else:
        rng = np.random.default_rng(0)
        count = min(len(live), max(1, cascade.ANN_TRAIN_VECTORS // manifest["frames"]))
        sample = np.sort(rng.choice(live, size=count, replace=False))
        training = np.concatenate([vectors for vectors, _ in store.frame_chunks(sample)])
        index, trained_on, add = cascade.new_ann(frames, manifest["dim"], training), len(live), live
    for vectors, owners in store.frame_chunks(add):
        index.add_with_ids(vectors, owners)
    name = f"ann-{manifest['generation'] + 1:08d}.faiss"
    tmp = store.root / f".{name}.tmp-{os.getpid()}"
    cascade.write_ann(index, tmp)
    os.replace(tmp, store.root / name)
    return {
        "file": name,
        "covered": int(manifest["next_id"]),
        "trained_on": int(trained_on),
        "kind": f"{cascade.describe_ann(index)} over frames",
        "bytes": (store.root / name).stat().st_size,
    }
