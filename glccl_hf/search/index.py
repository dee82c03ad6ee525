"""VideoIndex: the segments of a video collection, their GLCCL features on disk, and text search over them.

The facade over the index's parts: `model_setup` (the model and processor an index is bound to), `segment_store`
(the segments of the current manifest), `writer` (the lock and the commit), `adding` (what `add` encodes and commits),
`ann` (stage 1's approximate index) and `ranking` (the cascade and the exhaustive search).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..deprecation import renamed_keyword
from ..evaluation import encode_texts
from ..modeling.modeling_glccl import GLCCLModel, GLCCLTextFeatures, GLCCLVideoFeatures
from ..processing import GLCCLProcessor
from . import adding, ann, cascade, model_setup, ranking, storage
from .adding import AddReport
from .encoding import EncodedBatch, encode_files
from .model_setup import PROCESSOR_DIR
from .ranking import DEFAULT_CANDIDATES, DEFAULT_NPROBE, DEFAULT_WIDEN, SearchHit
from .segment_store import Registry, SegmentStore, segments_of
from .segments import VideoFile, discover
from .writer import LOCK_FILE, IndexWriter, exclusive

__all__ = [
    "DEFAULT_ANN_THRESHOLD",
    "DEFAULT_CANDIDATES",
    "DEFAULT_NPROBE",
    "DEFAULT_SEGMENT_SECONDS",
    "DEFAULT_WIDEN",
    "LOCK_FILE",
    "PROCESSOR_DIR",
    "AddReport",
    "SearchHit",
    "VideoIndex",
]

# MSR-VTT clips last 10-30 s (median about 15 s): a 15 s segment at 1 fps has 15 candidate frames, of which the
# processor keeps 12 by linspace, the same span and frame spacing as a typical training clip.
DEFAULT_SEGMENT_SECONDS = 15.0
# Below this many segments stage 1 is exact over every frame vector, held in memory as float32 (about 245 MB and,
# measured, 24 ms per query at dim 512 and 12 frames); above it, an IVF-PQ index over the frames (2 ms at 100k
# segments), with the segments added since its last update (fewer than half this many) searched exactly beside it.
DEFAULT_ANN_THRESHOLD = 10_000


class VideoIndex:
    """Text search over the segments of a video collection with GLCCL.

    Build with `VideoIndex.create(path, model)`, reopen with `VideoIndex.open(path)`. `add` indexes video files,
    folders or a `datasets` corpus incrementally; `search` ranks segments by the exact GLCCL score through a
    cascade (see `glccl_hf.search.cascade`); `remove` hides a video's segments at once, `compact` reclaims their
    space. Segment ids are stable until `compact`, which renumbers them.
    """

    def __init__(
        self,
        root: Path,
        manifest: dict[str, Any],
        model: GLCCLModel,
        processor: GLCCLProcessor,
        device: str | torch.device | None,
    ) -> None:
        self.root = root
        self.model = model
        self.processor = processor
        self.device = model_setup.process_device(device, model)
        self.model.to(self.device)
        self._open_store(manifest)

    # ------------------------------------------------------------------------------------------- create/open

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        model: GLCCLModel | str | os.PathLike,
        processor: GLCCLProcessor | None = None,
        *,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
        ann_threshold: int = DEFAULT_ANN_THRESHOLD,
        device: str | torch.device | None = None,
    ) -> VideoIndex:
        """A new, empty index in `path` (created; it must not hold an index already) for `model` (a GLCCLModel, a
        local checkpoint folder or a Hub id). The processor comes from the checkpoint when not given; it is saved
        in the index, so `open` needs no checkpoint for it."""
        root = Path(path)
        if (root / storage.MANIFEST).exists():
            raise FileExistsError(f"{root} already holds a video index: open it with VideoIndex.open")
        if root.exists() and not root.is_dir():
            raise NotADirectoryError(f"{root} exists and is not a folder")
        loaded = model_setup.load_model(model)
        name = model_setup.model_name(loaded, model)
        processor = model_setup.load_processor(processor, name)
        manifest = model_setup.new_manifest(loaded, name, processor, segment_seconds, ann_threshold)
        root.mkdir(parents=True, exist_ok=True)
        processor.save_pretrained(root / PROCESSOR_DIR)
        storage.write_manifest(root, manifest)
        return cls(root, manifest, loaded, processor, device)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        model: GLCCLModel | str | os.PathLike | None = None,
        device: str | torch.device | None = None,
    ) -> VideoIndex:
        """Open an index. Without `model`, the checkpoint recorded at creation is loaded. A model whose fingerprint
        (configuration and weights) differs from the index's is refused: the stored features are its own."""
        root = Path(path)
        manifest = storage.read_manifest(root)
        if model is None:
            model = manifest["model"]["name_or_path"]
            if not model:
                raise ValueError(f"{root} was built from an in-memory model: pass model= to open it")
        loaded = model_setup.load_model(model)
        model_setup.check_model(root, manifest, loaded)
        processor = model_setup.saved_processor(root, manifest)
        return cls(root, manifest, loaded, processor, device)

    # ------------------------------------------------------------------------------------------------- reading

    def _open_store(self, manifest: dict[str, Any]) -> None:
        """Read the segments of `manifest` (after every commit, and when another writer committed)."""
        self._store = SegmentStore(self.root, manifest, self.device)

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest the index reads: format, model, sampling settings, shards, removed segment ids."""
        return self._store.manifest

    def __len__(self) -> int:
        return len(self._store)

    def features(self, ids: np.ndarray) -> GLCCLVideoFeatures:
        """Stored features of segments `ids`: `frame_embeds` `[n, frames, dim]` float32, `video_mask` `[n, frames]`."""
        return self._store.features(ids)

    def segment_ids(self) -> np.ndarray:
        """Ids of the live segments, ascending."""
        return self._store.live_ids()

    def videos(self) -> list[str]:
        """Names of the videos with live segments, sorted, each once (absolute paths for indexed files)."""
        return sorted({str(name) for name in self._store.video[self._store.live]})

    def segment(self, segment_id: int) -> dict[str, Any]:
        """A live segment's video, start, end and frame times."""
        self._store.check_live(segment_id)
        return {
            "video": str(self._store.video[segment_id]),
            "start": float(self._store.start[segment_id]),
            "end": float(self._store.end[segment_id]),
            "frame_times": self.frame_times(segment_id),
        }

    def frame_times(self, segment_id: int) -> list[float]:
        """Sampling times (seconds in the video) of a segment's frames, in frame order."""
        return self._store.frame_times(segment_id)

    # ------------------------------------------------------------------------------------------------- writing

    @contextmanager
    def _writing(self) -> Iterator[IndexWriter]:
        """Exclusive write access (one writer per index, across processes) to a copy of the current manifest,
        re-read from disk so changes by an earlier writer are not lost."""
        with exclusive(self.root):
            manifest = storage.read_manifest(self.root)
            if manifest["generation"] != self.manifest["generation"]:
                self._open_store(manifest)
            yield IndexWriter(self.root, manifest, on_commit=self._open_store)

    @renamed_keyword("frame_mask", "video_mask")
    def add_features(
        self,
        frame_embeds: torch.Tensor | np.ndarray,
        video_mask: torch.Tensor | np.ndarray,
        videos: Sequence[str],
        starts: Sequence[float],
        ends: Sequence[float],
        *,
        frame_times: Sequence[Sequence[float]] | None = None,
        update_ann: bool = True,
    ) -> list[int]:
        """Index precomputed segment features; returns their segment ids.

        Args:
            frame_embeds: `[segments, frames, dim]`, the model's per-frame features after the temporal module.
            video_mask: `[segments, frames]`, 1 on the real frames, which come first.
            videos, starts, ends: each segment's video name and time span in seconds.
            frame_times: each segment's frame times (default: the processor's sampling of `[start, end)`).
            update_ann: rebuild the approximate index when it is due (pass False while adding many batches).
        """
        frame_embeds = torch.as_tensor(frame_embeds)
        video_mask = torch.as_tensor(video_mask)
        rows = adding.feature_rows(self.manifest, frame_embeds, video_mask, videos, starts, ends, frame_times)
        with self._writing() as writer:
            first = writer.append([writer.write_shard(0, 0, rows, frame_embeds)], [])
            if update_ann:
                self._update_ann(writer)
            writer.commit()
        return list(range(first, first + len(rows["video"])))

    def add(self, sources: Any, *, batch_size: int = 16, num_workers: int = 0, progress: bool = True) -> AddReport:
        """Index videos: files, folders (searched recursively for video extensions) and/or a `datasets` corpus with a
        `video` column. Videos already indexed with the same size and modification time are skipped; a changed one
        replaces its old segments. Long videos are cut into `segment_seconds` segments, each sampled as a training
        clip and encoded once. Every encoded batch is committed, so a killed run loses at most that batch. Files
        that cannot be indexed are listed in `failed` with the reason; they never stop the run.

        Under torchrun / accelerate launch every process encodes a disjoint share of the new files into its own
        shards, and the main process commits them.
        """
        files, failed = discover(sources)
        registry = self._store.registry()
        report = AddReport(failed=failed)
        todo = adding.changed_files(files, registry, report)
        rank, world = adding.distributed()
        if world > 1:
            return self._add_distributed(todo, report, registry, rank, world, batch_size, num_workers, progress)
        with self._writing() as writer:
            writer.remove_unreferenced()
            with adding.progress_bar(len(todo), rank, world, progress) as bar:
                adding.commit_batches(writer, self._encode(todo, batch_size, num_workers), registry, report, bar)
            self._update_ann(writer, commit=True)
        return report

    def _encode(self, files: list[VideoFile], batch_size: int, num_workers: int) -> Iterator[EncodedBatch]:
        """The encoded batches of `files`, segmented and sampled with this index's model and settings."""
        return encode_files(
            files,
            self.model,
            self.processor,
            self.manifest["segment_seconds"],
            batch_size=batch_size,
            num_workers=num_workers,
            device=self.device,
        )

    def _add_distributed(
        self,
        todo: list[VideoFile],
        report: AddReport,
        registry: Registry,
        rank: int,
        world: int,
        batch_size: int,
        num_workers: int,
        progress: bool,
    ) -> AddReport:
        """Each rank encodes `todo[rank::world]` into its own shards; rank 0, the lock holder, commits them all."""
        dist = torch.distributed
        shard_writer = contextlib.nullcontext(IndexWriter(self.root, dict(self.manifest), self._open_store))
        with self._writing() if rank == 0 else shard_writer as writer:
            if rank == 0:
                writer.remove_unreferenced()
            dist.barrier()
            share = todo[rank::world]
            with adding.progress_bar(len(share), rank, world, progress) as bar:
                entries, part = adding.write_batches(writer, rank, self._encode(share, batch_size, num_workers), bar)
            gathered = adding.gather(entries, part, world)
            for _, share_report in gathered:
                report.merge(share_report)
            if rank == 0:
                all_entries = [entry for share_entries, _ in gathered for entry in share_entries]
                writer.append(all_entries, adding.replaced_ids(report.added, registry))
                self._update_ann(writer)
                writer.commit()
            dist.barrier()
        if rank != 0:
            self._open_store(storage.read_manifest(self.root))
        return report

    def remove(self, videos: str | os.PathLike | Sequence[str | os.PathLike]) -> int:
        """Remove videos (names as indexed, paths, or folders: every video under them) from the index at once;
        returns the number of segments removed. Their space is reclaimed by `compact`."""
        if isinstance(videos, (str, os.PathLike)):
            videos = [videos]
        with self._writing() as writer:
            ids = segments_of(self._store.registry(), videos)
            if ids:
                writer.append([], ids)
                writer.commit()
        return len(ids)

    def compact(self, *, shard_segments: int = 65536) -> None:
        """Rewrite the live segments into fresh shards (renumbering segment ids from 0), rebuild the approximate
        index, and delete the files of removed segments."""
        with self._writing() as writer:
            live = self._store.live_ids()
            fresh = IndexWriter(
                self.root, dict(writer.manifest, shards=[], removed=[], next_id=0, ann=None), self._open_store
            )
            entries = []
            for sequence, start in enumerate(range(0, len(live), shard_segments)):
                ids = live[start : start + shard_segments]
                entries.append(fresh.write_shard(0, sequence, self._store.rows(ids), self.features(ids).frame_embeds))
            fresh.append(entries, [])
            self._update_ann(fresh)
            fresh.commit()
            fresh.remove_unreferenced()

    def build_ann(self) -> None:
        """(Re)build the approximate first-stage index over every live segment now."""
        with self._writing() as writer:
            self._update_ann(writer, force=True)
            writer.commit()

    def _update_ann(self, writer: IndexWriter, *, force: bool = False, commit: bool = False) -> None:
        """Keep the IVF-PQ frame index of the writer's manifest up to date (see `ann.due`; `force`: retrain it now);
        with `commit`, commit the manifest when the index changed."""
        store = SegmentStore(self.root, writer.manifest, self.device)
        entry = ann.update(store, retrain=force) if force or ann.due(store) else None
        if entry is None:
            return
        writer.manifest["ann"] = entry
        if commit:
            writer.commit()
            writer.remove_unreferenced()

    # ----------------------------------------------------------------------------------------------- searching

    def encode_queries(self, queries: Sequence[str]) -> GLCCLTextFeatures:
        """Text features of the queries, on the index's device."""
        return encode_texts(self.model, self.processor, list(queries), device=self.device, progress=False)

    def search(
        self,
        query_or_queries: str | Sequence[str],
        k: int = 10,
        *,
        candidates: int | None = None,
        exhaustive: bool = False,
        widen: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
    ) -> list[SearchHit] | list[list[SearchHit]]:
        """The `k` segments with the highest exact GLCCL score for each query (a list of hits for one query string, a
        list of lists for several).

        Args:
            k: hits per query.
            candidates: segments scored exactly per query (default `DEFAULT_CANDIDATES`); stage 1 proposes
                `widen * candidates`, stage 2 keeps `candidates`.
            exhaustive: score every segment exactly (no cascade).
            widen: stage 1 proposals per exact candidate (default `DEFAULT_WIDEN`; 1 skips stage 2).
            nprobe: IVF lists visited by the approximate stage 1 (large collections only).
        """
        single = isinstance(query_or_queries, str)
        queries = [query_or_queries] if single else list(query_or_queries)
        if not queries:
            raise ValueError("give at least one query")
        text = self.encode_queries(queries)
        results = self.search_features(
            text, k, candidates=candidates, exhaustive=exhaustive, widen=widen, nprobe=nprobe
        )
        return results[0] if single else results

    def search_features(
        self,
        text: GLCCLTextFeatures,
        k: int = 10,
        *,
        candidates: int | None = None,
        exhaustive: bool = False,
        widen: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        timings: dict[str, list[float]] | None = None,
    ) -> list[list[SearchHit]]:
        """`search` for already encoded queries (`text` from `encode_queries`, `[queries, ...]`); one list of hits per
        query. With `timings`, each stage's seconds per query are appended under "first_stage", "second_stage",
        "exact" and "hits" (cascade) or "exhaustive"."""
        return ranking.search_features(
            self.model,
            self._store,
            text,
            k,
            candidates=candidates,
            exhaustive=exhaustive,
            widen=widen,
            nprobe=nprobe,
            timings={} if timings is None else timings,
        )

    def first_stage(self, query: np.ndarray, count: int, nprobe: int = DEFAULT_NPROBE) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1: `(scores, ids)` of the `count` live segments whose best frame is closest to the normalised query
        vector `[dim]` (cosine), best first."""
        return ranking.first_stage(self._store, query, count, nprobe)

    @torch.no_grad()
    def frame_weights(self, query: str, segment_id: int) -> tuple[list[float], list[float]]:
        """A segment's frame times and GLIM's sentence-guided weights of its frames for `query` (they sum to 1 over
        the frames the model attends to): where in the segment the query matches."""
        self._store.check_live(segment_id)
        text = self.encode_queries([query])
        features = self.features(np.array([segment_id]))
        weights = cascade.sentence_frame_weights(
            self.model, text.sentence_embeds[0], features.frame_embeds, features.video_mask
        )[0]
        times = self.frame_times(segment_id)
        return times, weights[: len(times)].tolist()

    # -------------------------------------------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        """Counts, model, settings and bytes on disk."""
        usage = storage.disk_usage(self.root, self.manifest)
        processor_bytes = sum(p.stat().st_size for p in (self.root / PROCESSOR_DIR).rglob("*") if p.is_file())
        usage["processor"] = processor_bytes
        stored = self.manifest["next_id"]  # removed segments keep their bytes until compact
        feature_bytes = sum(v for key, v in usage.items() if key not in ("manifest", "processor"))
        return {
            "path": str(self.root),
            "segments": len(self),
            "videos": len(self.videos()),
            "removed_segments": len(self.manifest["removed"]),
            "shards": len(self.manifest["shards"]),
            "model": dict(self.manifest["model"]),
            "sampling": dict(self.manifest["sampling"]),
            "segment_seconds": self.manifest["segment_seconds"],
            "first_stage": self.manifest["ann"]["kind"] if self.manifest["ann"] else "exact (flat)",
            "bytes": usage,
            "bytes_total": sum(usage.values()),
            "bytes_per_segment": feature_bytes / stored if stored else 0.0,
        }
