"""`glccl-search`: index your own videos with a GLCCL checkpoint and search them by text.

    glccl-search add --index my_index --model CHECKPOINT my_videos/
    glccl-search search --index my_index "a man is cooking" [-k 10] [--candidates N] [--json]
    glccl-search remove --index my_index my_videos/old.mp4
    glccl-search status --index my_index
    glccl-search serve --index my_index [--host 127.0.0.1] [--port 7860]   # the search page (pip install glccl-hf[app])

`add` creates the index when the folder holds none (then --model is required), indexes only new or changed files,
and exits with status 1 when any file could not be indexed (after indexing all the others), listing them. It runs
unchanged under `torchrun --nproc_per_node N` / `accelerate launch`: each process encodes a share of the files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .index import DEFAULT_CANDIDATES, DEFAULT_SEGMENT_SECONDS, VideoIndex
from .storage import MANIFEST


def build_parser() -> argparse.ArgumentParser:
    """The `glccl-search` command line: add, search, remove, status and serve."""
    parser = argparse.ArgumentParser(
        prog="glccl-search", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    add = commands.add_parser("add", help="index video files, folders (recursive)")
    add.add_argument("--index", required=True, help="index folder (created when it holds no index)")
    add.add_argument("--model", help="GLCCL checkpoint folder or Hub id (required to create an index)")
    add.add_argument("--segment-seconds", type=float, default=DEFAULT_SEGMENT_SECONDS, help="for a new index")
    add.add_argument("--batch-size", type=int, default=16, help="segments per forward pass")
    add.add_argument("--num-workers", type=int, default=0, help="decoding worker processes")
    add.add_argument("--device", help="e.g. cuda, cuda:1 or cpu (default: where the model loads)")
    add.add_argument("--no-progress", action="store_true")
    add.add_argument("paths", nargs="+", help="video files and folders")

    search = commands.add_parser("search", help="rank the indexed segments for text queries")
    search.add_argument("--index", required=True)
    search.add_argument("--model", help="default: the checkpoint the index was built with")
    search.add_argument("-k", type=int, default=10, help="hits per query")
    search.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES, help="segments scored exactly")
    search.add_argument("--exhaustive", action="store_true", help="score every segment exactly")
    search.add_argument("--json", action="store_true", help="one JSON array of hits per query, one per line")
    search.add_argument("--html", metavar="FILE", help="also write a static results page (thumbnails, captions)")
    search.add_argument("--device")
    search.add_argument("queries", nargs="+")

    remove = commands.add_parser("remove", help="remove videos (or every video under folders) from the index")
    remove.add_argument("--index", required=True)
    remove.add_argument("--model")
    remove.add_argument("paths", nargs="+")

    status = commands.add_parser("status", help="counts, model and sizes on disk")
    status.add_argument("--index", required=True)
    status.add_argument("--model")
    status.add_argument("--json", action="store_true")

    serve = commands.add_parser("serve", help="the search page in a browser (needs: pip install 'glccl-hf[app]')")
    serve.add_argument("--index", required=True)
    serve.add_argument("--model")
    serve.add_argument("--device")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind; another one exposes your videos")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("-k", type=int, default=8, help="results shown at first")
    serve.add_argument("--min-score", type=float, help="hide hits scoring below this")
    serve.add_argument("--share", action="store_true", help="also publish a public gradio.live link")
    return parser


def _open(args: argparse.Namespace) -> VideoIndex:
    return VideoIndex.open(args.index, model=args.model, device=getattr(args, "device", None))


def _add(args: argparse.Namespace) -> int:
    if (Path(args.index) / MANIFEST).exists():
        index = _open(args)
    elif args.model is None:
        raise SystemExit(f"glccl-search: {args.index} holds no index yet: give --model to create it")
    else:
        index = VideoIndex.create(args.index, args.model, segment_seconds=args.segment_seconds, device=args.device)
    report = index.add(
        args.paths, batch_size=args.batch_size, num_workers=args.num_workers, progress=not args.no_progress
    )
    print(
        f"indexed {len(report.added)} videos ({report.segments} segments), {len(report.unchanged)} unchanged, "
        f"{len(report.failed)} failed; the index holds {len(index)} segments"
    )
    for path, reason in report.failed:
        print(f"failed: {path}: {reason}", file=sys.stderr)
    return 1 if report.failed else 0


def _search(args: argparse.Namespace) -> int:
    index = _open(args)
    results = index.search(args.queries, k=args.k, candidates=args.candidates, exhaustive=args.exhaustive)
    for query, hits in zip(args.queries, results, strict=True):
        if args.json:
            print(json.dumps([hit.to_dict() for hit in hits]))
            continue
        print(f"== {query}")
        for rank, hit in enumerate(hits, 1):
            span = f"{hit.start:.1f}-{hit.end:.1f} s"
            print(f"{rank:3d}. {hit.score:8.3f}  {hit.video}  {span}  (best at {hit.best_time:.1f} s)")
    if args.html:
        from .results_page import write_results_html

        print(f"wrote {write_results_html(args.html, list(zip(args.queries, results, strict=True)))}", file=sys.stderr)
    return 0


def _remove(args: argparse.Namespace) -> int:
    index = _open(args)
    removed = index.remove(args.paths)
    print(f"removed {removed} segments; the index holds {len(index)} (run compact to reclaim their space)")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _open(args).status()
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    print(f"index {status['path']}: {status['segments']} segments from {status['videos']} videos")
    print(f"  removed, awaiting compact: {status['removed_segments']}; shards: {status['shards']}")
    print(f"  model: {status['model']['name_or_path']} (fingerprint {status['model']['fingerprint'][:12]})")
    print(f"  sampling: {status['sampling']}, segments of {status['segment_seconds']:g} s")
    print(f"  first stage: {status['first_stage']}")
    print(f"  on disk: {status['bytes_total']} bytes ({status['bytes_per_segment']:.0f} per segment)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from .app import launch
    except ImportError as err:
        raise SystemExit(f"glccl-search serve: {err}") from err
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}: anyone who can reach it can search and watch the indexed videos",
            file=sys.stderr,
        )
    launch(_open(args), host=args.host, port=args.port, share=args.share, k=args.k, min_score=args.min_score)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = {"add": _add, "search": _search, "remove": _remove, "status": _status, "serve": _serve}[args.command]
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
