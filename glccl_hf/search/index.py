"""VideoIndex: the segments of a video collection, their GLCCL features on disk, and text search over them."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from ..evaluation import encode_texts
from ..modeling.checks import positive_int
from ..modeling.modeling_glccl import GLCCLModel, GLCCLTextFeatures, GLCCLVideoFeatures
from ..processing import GLCCLProcessor
from ..video import sample_timestamps
from . import cascade, storage
from .encoding import encode_files
from .segments import discover

# MSR-VTT clips last 10-30 s (median about 15 s): a 15 s segment at 1 fps has 15 candidate frames, of which the
# processor keeps 12 by linspace, the same span and frame spacing as a typical training clip.
DEFAULT_SEGMENT_SECONDS = 15.0
# Segments scored exactly per query, and stage 1's proposals per exact candidate (see README "Search your own videos").
DEFAULT_CANDIDATES = 100
DEFAULT_WIDEN = 4
# Below this many segments stage 1 is exact over every frame vector, held in memory as float32 (about 245 MB and,
# measured, 24 ms per query at dim 512 and 12 frames); above it, an IVF-PQ index over the frames (2 ms at 100k
# segments), with the segments added since its last update (fewer than half this many) searched exactly beside it.
DEFAULT_ANN_THRESHOLD = 10_000
DEFAULT_NPROBE = 32
# Segments scored exactly at once by the exhaustive search (bounds its memory).
_EXHAUSTIVE_CHUNK = 4096
PROCESSOR_DIR = "processor"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class SearchHit:
    """One retrieved segment: `video` from `start` to `end` seconds, its exact GLCCL `score` for the query, and
    `best_time`, the sampled frame GLIM's sentence-guided weights favour most (the moment that matches)."""

    video: str
    start: float
    end: float
    score: float
    segment_id: int
    best_time: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AddReport:
    """What `VideoIndex.add` did: videos indexed (new or changed), videos already indexed unchanged, and
    `(path, reason)` for every source that could not be indexed."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    segments: int = 0


def _distributed() -> tuple[int, int]:
    """(rank, world size) of a torchrun / accelerate launch; the process group is started here when the launcher
    set the environment but nobody initialised it."""
    dist = torch.distributed
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0, 1
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _process_device(device: str | torch.device | None, model: GLCCLModel) -> torch.device:
    """`device`, or the model's; under a launcher a bare "cuda" means this process's GPU (LOCAL_RANK)."""
    if device is None:
        return next(model.parameters()).device
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def _load_model(model: GLCCLModel | str | os.PathLike) -> GLCCLModel:
    if isinstance(model, GLCCLModel):
        return model.eval()
    if isinstance(model, (str, os.PathLike)):
        return GLCCLModel.from_pretrained(os.fspath(model)).eval()
    raise TypeError(f"model must be a GLCCLModel, a checkpoint folder or a Hub id, got {type(model).__name__}")


def _model_name(model: GLCCLModel, given: Any) -> str | None:
    """How the manifest refers to the model so `open` can load it: a local folder as an absolute path, a Hub id."""
    name = os.fspath(given) if isinstance(given, (str, os.PathLike)) else getattr(model, "name_or_path", "") or None
    if name and os.path.isdir(name):
        return os.path.abspath(name)
    return name


def _load_processor(processor: GLCCLProcessor | None, model: GLCCLModel, name: str | None) -> GLCCLProcessor:
    if processor is not None:
        return processor
    if name is None:
        raise ValueError("the model has no checkpoint to load its processor from: pass processor=")
    try:
        return GLCCLProcessor.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load the processor of {name} ({err}); pass processor=") from err


def _sampling(processor: GLCCLProcessor) -> dict[str, Any]:
    if processor.max_seconds is not None:
        raise ValueError(
            "the processor samples only the first max_seconds of a video; the index segments whole "
            "videos itself: use a processor with max_seconds=None"
        )
    return {
        "max_frames": processor.max_frames,
        "sample_fps": processor.sample_fps,
        "image_size": processor.image_size,
        "max_words": processor.max_words,
    }


def _check_segment_seconds(segment_seconds: float, sample_fps: float) -> float:
    steps = segment_seconds * sample_fps
    if not (isinstance(segment_seconds, (int, float)) and segment_seconds > 0 and abs(steps - round(steps)) < 1e-9):
        raise ValueError(
            f"segment_seconds={segment_seconds!r} must be positive and hold a whole number of "
            f"1/sample_fps = {1 / sample_fps:g} s steps"
        )
    return float(segment_seconds)


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
        self.device = _process_device(device, model)
        self.model.to(self.device)
        self._load(manifest)

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
        loaded = _load_model(model)
        name = _model_name(loaded, model)
        processor = _load_processor(processor, loaded, name)
        sampling = _sampling(processor)
        if (
            sampling["max_words"] != loaded.config.max_words
            or sampling["max_frames"] > loaded.config.max_frame_positions
        ):
            raise ValueError(
                f"the processor (max_words={sampling['max_words']}, max_frames={sampling['max_frames']}) "
                f"does not fit the model (max_words={loaded.config.max_words})"
            )
        manifest = {
            "format_version": storage.FORMAT_VERSION,
            "model": {"name_or_path": name, "fingerprint": storage.model_fingerprint(loaded)},
            "sampling": sampling,
            "segment_seconds": _check_segment_seconds(segment_seconds, processor.sample_fps),
            "dim": loaded.config.projection_dim,
            "frames": processor.max_frames,
            "ann_threshold": int(ann_threshold),
            "generation": 0,
            "next_id": 0,
            "shards": [],
            "removed": [],
            "ann": None,
        }
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
        recorded = manifest["model"]
        if model is None:
            if not recorded["name_or_path"]:
                raise ValueError(f"{root} was built from an in-memory model: pass model= to open it")
            model = recorded["name_or_path"]
        loaded = _load_model(model)
        fingerprint = storage.model_fingerprint(loaded)
        if fingerprint != recorded["fingerprint"]:
            raise storage.ModelMismatchError(
                f"{root} was indexed with another model ({recorded['name_or_path'] or 'in-memory'}, fingerprint "
                f"{recorded['fingerprint'][:12]}) than the one given (fingerprint {fingerprint[:12]}); its features "
                f"cannot be scored with it. Open it with the original model, or re-index the videos with this one "
                f"into a new folder: glccl-search add --index NEW_DIR --model MODEL VIDEOS..."
            )
        try:
            processor = GLCCLProcessor.from_pretrained(root / PROCESSOR_DIR)
        except (OSError, ValueError) as err:
            raise storage.IndexFormatError(
                f"{root / PROCESSOR_DIR}: cannot load the index's processor ({err})"
            ) from err
        if _sampling(processor) != manifest["sampling"]:
            raise storage.IndexFormatError(f"{root / PROCESSOR_DIR}: sampling settings differ from the manifest's")
        return cls(root, manifest, loaded, processor, device)

    # ------------------------------------------------------------------------------------------------- state

    def _load(self, manifest: dict[str, Any]) -> None:
        """Open every shard the manifest names and derive the per-segment arrays."""
        self.manifest = manifest
        frames, dim = manifest["frames"], manifest["dim"]
        self._shards = [storage.open_shard(self.root, entry, frames, dim) for entry in manifest["shards"]]
        self._first_ids = np.array([shard.first_id for shard in self._shards], dtype=np.int64)
        total = manifest["next_id"]
        self._live = np.zeros(total, dtype=bool)
        self._videos = np.empty(total, dtype=object)
        self._starts = np.zeros(total)
        self._ends = np.zeros(total)
        self._num_frames = np.zeros(total, dtype=np.int64)
        for shard in self._shards:
            rows = slice(shard.first_id, shard.first_id + len(shard))
            self._live[rows] = True
            self._videos[rows] = shard.table.column("video").to_numpy(zero_copy_only=False)
            self._starts[rows] = shard.table.column("start").to_numpy()
            self._ends[rows] = shard.table.column("end").to_numpy()
            self._num_frames[rows] = shard.table.column("num_frames").to_numpy()
        self._live[np.asarray(manifest["removed"], dtype=np.int64)] = False
        self._ann = None
        if manifest["ann"]:
            storage.check_file_size(self.root / manifest["ann"]["file"], manifest["ann"]["bytes"])
        # Read on the first search: writers commit often and need neither.
        self._tail: tuple[np.ndarray, np.ndarray] | None = None

    def _ann_index(self) -> Any:
        """The IVF-PQ frame index, read once (None below the threshold)."""
        if self._ann is None and self.manifest["ann"]:
            self._ann = cascade.read_ann(self.root / self.manifest["ann"]["file"])
        return self._ann

    def _tail_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """Frame vectors and their segment ids of the live segments not in the IVF-PQ index (all of them below the
        threshold), computed once from the stored features."""
        if self._tail is None:
            covered = self.manifest["ann"]["covered"] if self.manifest["ann"] else 0
            tail = np.flatnonzero(self._live[covered:]) + covered
            chunks = list(self._frame_chunks(tail))
            vectors = np.concatenate([v for v, _ in chunks]) if chunks else np.empty((0, self.manifest["dim"]), "f4")
            owners = np.concatenate([o for _, o in chunks]) if chunks else np.empty(0, np.int64)
            self._tail = (vectors, owners)
        return self._tail

    def __len__(self) -> int:
        return int(self._live.sum())

    def _locate(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._first_ids, ids, side="right") - 1

    def _gather(self, ids: np.ndarray, attribute: str) -> np.ndarray:
        """Rows `ids` of a per-shard float16 array, in the order of `ids`, as float32."""
        ids = np.asarray(ids, dtype=np.int64)
        dims = getattr(self._shards[0], attribute).shape[1:] if self._shards else ()
        out = np.empty((len(ids), *dims), dtype=np.float32)
        if len(ids) == 0:
            return out
        shard_of = self._locate(ids)
        for s in np.unique(shard_of):
            where = np.flatnonzero(shard_of == s)
            rows = ids[where] - self._first_ids[s]
            order = np.argsort(rows)  # ascending rows read a memory map front to back
            out[where[order]] = getattr(self._shards[s], attribute)[rows[order]]
        return out

    def features(self, ids: np.ndarray) -> GLCCLVideoFeatures:
        """Stored features of segments `ids`: `frame_embeds` `[n, frames, dim]` float32, `frame_mask` `[n, frames]`."""
        frame_embeds = torch.from_numpy(self._gather(ids, "frame_embeds")).to(self.device)
        counts = torch.from_numpy(self._num_frames[ids])
        frame_mask = (torch.arange(self.manifest["frames"])[None, :] < counts[:, None]).long().to(self.device)
        return GLCCLVideoFeatures(frame_embeds=frame_embeds, frame_mask=frame_mask)

    def segment_ids(self) -> np.ndarray:
        """Ids of the live segments, ascending."""
        return np.flatnonzero(self._live)

    def videos(self) -> list[str]:
        """Names of the videos with live segments, sorted, each once (absolute paths for indexed files)."""
        return sorted({str(name) for name in self._videos[self._live]})

    def segment(self, segment_id: int) -> dict[str, Any]:
        """A live segment's video, start, end and frame times."""
        self._check_live(segment_id)
        return {
            "video": str(self._videos[segment_id]),
            "start": float(self._starts[segment_id]),
            "end": float(self._ends[segment_id]),
            "frame_times": self.frame_times(segment_id),
        }

    def _check_live(self, segment_id: int) -> None:
        if not (0 <= segment_id < len(self._live)) or not self._live[segment_id]:
            raise KeyError(f"segment {segment_id} is not in the index")

    def frame_times(self, segment_id: int) -> list[float]:
        """Sampling times (seconds in the video) of a segment's frames, in frame order."""
        shard = self._shards[int(self._locate(np.array([segment_id]))[0])]
        return shard.table.column("frame_times")[segment_id - shard.first_id].as_py()

    @contextmanager
    def _writing(self) -> Iterator[dict[str, Any]]:
        """Exclusive write access (one writer per index, across processes); yields a copy of the current manifest,
        re-read from disk so changes by an earlier writer are not lost."""
        with open(self.root / LOCK_FILE, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise RuntimeError(f"{self.root} is being modified by another process") from err
            try:
                manifest = storage.read_manifest(self.root)
                if manifest["generation"] != self.manifest["generation"]:
                    self._load(manifest)
                yield manifest
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _commit(self, manifest: dict[str, Any]) -> None:
        manifest["generation"] += 1
        storage.write_manifest(self.root, manifest)
        self._load(manifest)

    # --------------------------------------------------------------------------------------------- writing

    def add_features(
        self,
        frame_embeds: torch.Tensor | np.ndarray,
        frame_mask: torch.Tensor | np.ndarray,
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
            frame_mask: `[segments, frames]`, 1 on the real frames, which come first.
            videos, starts, ends: each segment's video name and time span in seconds.
            frame_times: each segment's frame times (default: the processor's sampling of `[start, end)`).
            update_ann: rebuild the approximate index when it is due (pass False while adding many batches).
        """
        frame_embeds = torch.as_tensor(frame_embeds)
        frame_mask = torch.as_tensor(frame_mask)
        count = self._check_features(frame_embeds, frame_mask, videos, starts, ends)
        num_frames = frame_mask.sum(1).tolist()
        if frame_times is None:
            frame_times = [self._default_times(s, e, n) for s, e, n in zip(starts, ends, num_frames, strict=True)]
        rows = {
            "video": [str(v) for v in videos],
            "start": [float(s) for s in starts],
            "end": [float(e) for e in ends],
            "num_frames": num_frames,
            "frame_times": [list(map(float, t)) for t in frame_times],
            "file_size": [-1] * count,  # not from a file: a later add() of the same path replaces these segments
            "file_mtime_ns": [-1] * count,
        }
        with self._writing() as manifest:
            entry = self._write_shard(manifest, 0, 0, rows, frame_embeds, frame_mask)
            first = self._append(manifest, [entry], [])
            if update_ann:
                self._maybe_build_ann(manifest)
            self._commit(manifest)
        return list(range(first, first + count))

    def _check_features(
        self,
        frame_embeds: torch.Tensor,
        frame_mask: torch.Tensor,
        videos: Sequence[str],
        starts: Sequence[float],
        ends: Sequence[float],
    ) -> int:
        frames, dim = self.manifest["frames"], self.manifest["dim"]
        if frame_embeds.ndim != 3 or tuple(frame_embeds.shape[1:]) != (frames, dim):
            raise ValueError(f"frame_embeds must be [segments, {frames}, {dim}], got {list(frame_embeds.shape)}")
        count = frame_embeds.shape[0]
        if tuple(frame_mask.shape) != (count, frames):
            raise ValueError(f"frame_mask must be [{count}, {frames}], got {list(frame_mask.shape)}")
        mask = frame_mask.bool()
        prefix = torch.arange(frames)[None, :] < mask.sum(1, keepdim=True)
        if not bool((mask == prefix).all()) or not bool(mask[:, 0].all()):
            raise ValueError("frame_mask must mark at least one frame per segment, the real frames first")
        for name, values in (("videos", videos), ("starts", starts), ("ends", ends)):
            if len(values) != count:
                raise ValueError(f"{name} has {len(values)} entries for {count} segments")
        return count

    def _default_times(self, start: float, end: float, num_frames: int) -> list[float]:
        sampling = self.manifest["sampling"]
        times = sample_timestamps(max(end - start, 0.0), sampling["max_frames"], sampling["sample_fps"])
        if len(times) != num_frames:
            times = np.linspace(0.0, max(end - start, 0.0), num_frames, endpoint=False).tolist()
        return [start + t for t in times]

    def _write_shard(
        self,
        manifest: dict[str, Any],
        rank: int,
        sequence: int,
        rows: dict[str, list[Any]],
        frame_embeds: torch.Tensor,
        frame_mask: torch.Tensor,
    ) -> dict[str, Any]:
        name = f"{manifest['generation'] + 1:08d}-r{rank:03d}-{sequence:06d}"
        return storage.write_shard(self.root, name, rows, frame_embeds.float().cpu().numpy().astype(np.float16))

    @staticmethod
    def _append(manifest: dict[str, Any], entries: list[dict[str, Any]], replaced: list[int]) -> int:
        """Give the shards their ids and hide the replaced segments (in the manifest only); returns the first id."""
        first = manifest["next_id"]
        for entry in entries:
            entry["first_id"] = manifest["next_id"]
            manifest["next_id"] += entry["segments"]
            manifest["shards"].append(entry)
        manifest["removed"] = sorted(set(manifest["removed"]) | set(replaced))
        return first

    def add(
        self,
        sources: Any,
        *,
        batch_size: int = 16,
        num_workers: int = 0,
        progress: bool = True,
    ) -> AddReport:
        """Index videos: files, folders (searched recursively for video extensions) and/or a `datasets` corpus with a
        `video` column. Videos already indexed with the same size and modification time are skipped; a changed one
        replaces its old segments. Long videos are cut into `segment_seconds` segments, each sampled as a training
        clip and encoded once. Every encoded batch is committed, so a killed run loses at most that batch. Files
        that cannot be indexed are listed in `failed` with the reason; they never stop the run.

        Under torchrun / accelerate launch every process encodes a disjoint share of the new files into its own
        shards, and the main process commits them.
        """
        files, failed = discover(sources)
        registry = self._registry()
        report = AddReport(failed=failed)
        todo = []
        for video in files:
            known = registry.get(video.name)
            if known is not None and known[0] == video.size and known[1] == video.mtime_ns:
                report.unchanged.append(video.name)
            else:
                todo.append(video)
        rank, world = _distributed()
        if world > 1:
            return self._add_distributed(todo, report, registry, rank, world, batch_size, num_workers, progress)
        with self._writing() as manifest:
            storage.remove_unreferenced(self.root, manifest)
            bar = tqdm(total=len(todo), desc="Indexing videos", unit="video", disable=not progress)
            with bar:
                for sequence, batch in enumerate(self._encode(todo, batch_size, num_workers)):
                    entries = []
                    if batch.videos:
                        rows, frame_embeds, frame_mask = batch.shard()
                        entries.append(self._write_shard(manifest, 0, sequence, rows, frame_embeds, frame_mask))
                        replaced = [i for name in batch.videos for i in registry.get(name, (0, 0, []))[2]]
                        self._append(manifest, entries, replaced)
                        self._commit(manifest)
                    report.added += batch.videos
                    report.segments += batch.num_segments
                    report.failed += batch.failed
                    bar.update(len(batch.videos) + len(batch.failed))
            self._maybe_build_ann(manifest, commit=True)
        return report

    def _encode(self, files: list[Any], batch_size: int, num_workers: int) -> Any:
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
        todo: list[Any],
        report: AddReport,
        registry: dict[str, tuple[int, int, list[int]]],
        rank: int,
        world: int,
        batch_size: int,
        num_workers: int,
        progress: bool,
    ) -> AddReport:
        """Each rank encodes `todo[rank::world]` into its own shards; rank 0 commits them all at once."""
        dist = torch.distributed
        lock = self._writing() if rank == 0 else None
        manifest = lock.__enter__() if lock is not None else dict(self.manifest)
        try:
            if rank == 0:
                storage.remove_unreferenced(self.root, manifest)
            dist.barrier()
            entries, added, failed, segments = [], [], [], 0
            share = todo[rank::world]
            bar = tqdm(
                total=len(share), desc=f"Indexing videos (rank {rank})", unit="video", disable=not progress or rank != 0
            )
            with bar:
                for sequence, batch in enumerate(self._encode(share, batch_size, num_workers)):
                    if batch.videos:
                        rows, frame_embeds, frame_mask = batch.shard()
                        entries.append(self._write_shard(manifest, rank, sequence, rows, frame_embeds, frame_mask))
                    added += batch.videos
                    failed += batch.failed
                    segments += batch.num_segments
                    bar.update(len(batch.videos) + len(batch.failed))
            gathered = [None] * world
            dist.all_gather_object(gathered, (entries, added, failed, segments))
            if rank == 0:
                all_entries = [entry for part in gathered for entry in part[0]]
                replaced = [i for part in gathered for name in part[1] for i in registry.get(name, (0, 0, []))[2]]
                self._append(manifest, all_entries, replaced)
                self._maybe_build_ann(manifest)
                self._commit(manifest)
            dist.barrier()
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)
        if rank != 0:
            self._load(storage.read_manifest(self.root))
        for part in gathered:
            report.added += part[1]
            report.failed += part[2]
            report.segments += part[3]
        return report

    def _registry(self) -> dict[str, tuple[int, int, list[int]]]:
        """Indexed videos: name -> (file size, modification time ns, live segment ids)."""
        registry: dict[str, tuple[int, int, list[int]]] = {}
        for shard in self._shards:
            columns = shard.table.select(["video", "file_size", "file_mtime_ns"]).to_pydict()
            for row, (name, size, mtime) in enumerate(
                zip(columns["video"], columns["file_size"], columns["file_mtime_ns"], strict=True)
            ):
                segment_id = shard.first_id + row
                if self._live[segment_id]:
                    registry.setdefault(name, (size, mtime, []))[2].append(segment_id)
        return registry

    def remove(self, videos: str | os.PathLike | Sequence[str | os.PathLike]) -> int:
        """Remove videos (names as indexed, paths, or folders: every video under them) from the index at once;
        returns the number of segments removed. Their space is reclaimed by `compact`."""
        if isinstance(videos, (str, os.PathLike)):
            videos = [videos]
        with self._writing() as manifest:
            registry = self._registry()
            ids: list[int] = []
            for video in videos:
                name = os.fspath(video)
                matches = [name] if name in registry else []
                path = os.path.abspath(name)
                if not matches:
                    matches = [v for v in registry if v == path or v.startswith(path.rstrip(os.sep) + os.sep)]
                for match in matches:
                    ids += registry.pop(match)[2]
            if ids:
                self._append(manifest, [], ids)
                self._commit(manifest)
        return len(ids)

    def compact(self, *, shard_segments: int = 65536) -> None:
        """Rewrite the live segments into fresh shards (renumbering segment ids from 0), rebuild the approximate
        index, and delete the files of removed segments."""
        with self._writing() as manifest:
            live = np.flatnonzero(self._live)
            fresh = dict(manifest, shards=[], removed=[], next_id=0, ann=None)
            entries = []
            for sequence, start in enumerate(range(0, len(live), shard_segments)):
                ids = live[start : start + shard_segments]
                features = self.features(ids)
                rows = self._rows(ids)
                entries.append(self._write_shard(fresh, 0, sequence, rows, features.frame_embeds, features.frame_mask))
            self._append(fresh, entries, [])
            self._maybe_build_ann(fresh)
            self._commit(fresh)
            storage.remove_unreferenced(self.root, fresh)

    def _rows(self, ids: np.ndarray) -> dict[str, list[Any]]:
        """Metadata rows of segments `ids`, in that order."""
        parts = []
        shard_of = self._locate(ids)
        for s in np.unique(shard_of):
            rows = ids[shard_of == s] - self._first_ids[s]
            parts.append(self._shards[s].table.take(rows))
        return pa.concat_tables(parts).to_pydict() if parts else {name: [] for name in storage.SEGMENT_SCHEMA.names}

    def build_ann(self) -> None:
        """(Re)build the approximate first-stage index over every live segment now."""
        with self._writing() as manifest:
            self._maybe_build_ann(manifest, force=True)
            self._commit(manifest)

    def _maybe_build_ann(self, manifest: dict[str, Any], *, force: bool = False, commit: bool = False) -> None:
        """Keep the IVF-PQ frame index up to date once the collection reaches `ann_threshold` segments: the segments
        added since its last update are added to it when they reach half the threshold; it is retrained from scratch
        when the collection has grown four-fold since its training (or with `force`)."""
        self._load(manifest)
        live = np.flatnonzero(self._live)
        threshold = manifest["ann_threshold"]
        ann = manifest["ann"]
        covered = ann["covered"] if ann else 0
        tail = live[live >= covered]
        if not force and (len(live) < threshold or (ann and len(tail) < threshold // 2)):
            return
        if not len(live):
            return
        frames = int(self._num_frames[live].sum())
        if ann and not force and len(live) <= 4 * ann["trained_on"]:
            index, trained_on, add = self._ann_index(), ann["trained_on"], tail
        else:
            rng = np.random.default_rng(0)
            count = min(len(live), max(1, cascade.ANN_TRAIN_VECTORS // manifest["frames"]))
            sample = np.sort(rng.choice(live, size=count, replace=False))
            training = np.concatenate([vectors for vectors, _ in self._frame_chunks(sample)])
            index, trained_on, add = cascade.new_ann(frames, manifest["dim"], training), len(live), live
        for vectors, owners in self._frame_chunks(add):
            index.add_with_ids(vectors, owners)
        name = f"ann-{manifest['generation'] + 1:08d}.faiss"
        tmp = self.root / f".{name}.tmp-{os.getpid()}"
        cascade.write_ann(index, tmp)
        os.replace(tmp, self.root / name)
        manifest["ann"] = {
            "file": name,
            "covered": int(manifest["next_id"]),
            "trained_on": int(trained_on),
            "kind": f"{cascade.describe_ann(index)} over frames",
            "bytes": (self.root / name).stat().st_size,
        }
        if commit:
            self._commit(manifest)
            storage.remove_unreferenced(self.root, manifest)

    def _frame_chunks(self, ids: np.ndarray, chunk: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stage-1 frame vectors of segments `ids` in chunks: `(vectors [n, dim] float32, segment id of each)`."""
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk]
            features = self.features(part)
            vectors, rows = cascade.frame_vectors(features.frame_embeds, features.frame_mask)
            yield vectors, part[rows].astype(np.int64)

    # -------------------------------------------------------------------------------------------- searching

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
        positive_int("k", k)
        timings = {} if timings is None else timings
        count = text.sentence_embeds.shape[0]
        if len(self) == 0:
            return [[] for _ in range(count)]
        if exhaustive:
            start = time.perf_counter()
            results = self._exhaustive(text, k)
            timings.setdefault("exhaustive", []).append((time.perf_counter() - start) / count)
            return results
        candidates = DEFAULT_CANDIDATES if candidates is None else candidates
        widen = DEFAULT_WIDEN if widen is None else widen
        candidates, widen = positive_int("candidates", candidates), positive_int("widen", widen)
        return [self._cascade(_row(text, i), k, max(candidates, k), widen, nprobe, timings) for i in range(count)]

    @torch.no_grad()
    def _exact(self, text: GLCCLTextFeatures, ids: np.ndarray) -> torch.Tensor:
        """Exact fused GLCCL scores `[texts, len(ids)]` (logit scale applied)."""
        return self.model.similarity(text, self.features(ids)).float().cpu()

    def _exhaustive(self, text: GLCCLTextFeatures, k: int) -> list[list[SearchHit]]:
        live = np.flatnonzero(self._live)
        best_scores = torch.full((text.sentence_embeds.shape[0], 0), float("-inf"))
        best_ids = torch.zeros((text.sentence_embeds.shape[0], 0), dtype=torch.long)
        for start in range(0, len(live), _EXHAUSTIVE_CHUNK):
            ids = live[start : start + _EXHAUSTIVE_CHUNK]
            scores = torch.cat([best_scores, self._exact(text, ids)], dim=1)
            pool = torch.cat([best_ids, torch.from_numpy(ids)[None].expand(len(scores), -1)], dim=1)
            best_scores, order = scores.topk(min(k, scores.shape[1]), dim=1)
            best_ids = pool.gather(1, order)
        return [self._hits(_row(text, i), best_ids[i].numpy(), best_scores[i].numpy()) for i in range(len(best_ids))]

    def first_stage(self, query: np.ndarray, count: int, nprobe: int = DEFAULT_NPROBE) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1: `(scores, ids)` of the `count` live segments whose best frame is closest to the normalised query
        vector `[dim]` (cosine), best first."""
        scores, ids = np.empty(0, np.float32), np.empty(0, np.int64)
        tail_vectors, tail_owners = self._tail_frames()
        if len(tail_owners):
            scores, ids = cascade.segment_max(tail_vectors @ query, tail_owners)
        if self._ann_index() is not None:
            # A segment contributes several frames, and removed segments stay in the IVF index until the next build.
            frames = count * min(self.manifest["frames"], 4) + min(len(self.manifest["removed"]), 4 * count)
            ann_scores, ann_ids = cascade.search_ann(self._ann, query[None], frames, nprobe)
            keep = (ann_ids[0] >= 0) & self._live[np.clip(ann_ids[0], 0, None)]
            scores = np.concatenate([scores, ann_scores[0][keep]])
            ids = np.concatenate([ids, ann_ids[0][keep]])
            scores, ids = cascade.segment_max(scores, ids)
        return cascade.top_k(scores, ids, count)

    @torch.no_grad()
    def _cascade(
        self, text: GLCCLTextFeatures, k: int, candidates: int, widen: int, nprobe: int, timings: dict[str, list[float]]
    ) -> list[SearchHit]:
        clock = _StageClock(timings)
        sentence = text.sentence_embeds[0]
        query = cascade.query_vectors(text.sentence_embeds)[0]
        _, ids = self.first_stage(query, candidates * widen, nprobe)
        clock.lap("first_stage")
        if widen > 1 and len(ids) > candidates:
            features = self.features(ids)
            rough = cascade.video_sentence_scores(self.model, sentence, features.frame_embeds, features.frame_mask)
            _, ids = cascade.top_k(rough.cpu().numpy(), ids, candidates)
        clock.lap("second_stage")
        scores = self._exact(text, ids)[0].numpy()
        scores, ids = cascade.top_k(scores, ids, k)
        clock.lap("exact")
        hits = self._hits(text, ids, scores)
        clock.lap("hits")
        return hits

    def _hits(self, text: GLCCLTextFeatures, ids: np.ndarray, scores: np.ndarray) -> list[SearchHit]:
        """SearchHits of one query, with each segment's best moment."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return []
        features = self.features(ids)
        weights = cascade.sentence_frame_weights(
            self.model, text.sentence_embeds[0], features.frame_embeds, features.frame_mask
        )
        best = cascade.best_frames(weights, features.frame_mask).tolist()
        return [
            SearchHit(
                video=str(self._videos[i]),
                start=float(self._starts[i]),
                end=float(self._ends[i]),
                score=float(score),
                segment_id=int(i),
                best_time=float(self.frame_times(int(i))[frame]),
            )
            for i, score, frame in zip(ids, scores, best, strict=True)
        ]

    @torch.no_grad()
    def frame_weights(self, query: str, segment_id: int) -> tuple[list[float], list[float]]:
        """A segment's frame times and GLIM's sentence-guided weights of its frames for `query` (they sum to 1 over
        the frames the model attends to): where in the segment the query matches."""
        self._check_live(segment_id)
        text = self.encode_queries([query])
        features = self.features(np.array([segment_id]))
        weights = cascade.sentence_frame_weights(
            self.model, text.sentence_embeds[0], features.frame_embeds, features.frame_mask
        )[0]
        times = self.frame_times(segment_id)
        return times, weights[: len(times)].tolist()

    # ----------------------------------------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        """Counts, model, settings and bytes on disk."""
        usage = storage.disk_usage(self.root, self.manifest)
        processor_bytes = sum(p.stat().st_size for p in (self.root / PROCESSOR_DIR).rglob("*") if p.is_file())
        usage["processor"] = processor_bytes
        segments = len(self)
        stored = self.manifest["next_id"]  # removed segments keep their bytes until compact
        feature_bytes = sum(v for key, v in usage.items() if key not in ("manifest", "processor"))
        return {
            "path": str(self.root),
            "segments": segments,
            "videos": len({self._videos[i] for i in np.flatnonzero(self._live)}),
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


class _StageClock:
    """Appends the seconds since the previous lap to `timings[stage]`."""

    def __init__(self, timings: dict[str, list[float]]) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings.setdefault(stage, []).append(now - self.last)
        self.last = now


def _row(text: GLCCLTextFeatures, i: int) -> GLCCLTextFeatures:
    return GLCCLTextFeatures(**{key: value[i : i + 1] for key, value in text.items()})
