"""One pipeline over a corpus of files: a local process pool, or Ray Data
(:mod:`remotemedia.ray`). What each file leaves in ``OUT/files/`` is described in
:mod:`remotemedia.corpus`; ``OUT/summary.json`` sums the run up. With ``resume``,
files whose record says "ok" are skipped; the others are done again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from . import corpus, files
from .errors import InvalidInputError

# ---- the local engine: one pipeline per worker process, reused across files ----------

_worker: dict = {}


def _init_worker(manifest_text: str, runtime: str) -> None:
    from .pipeline import Pipeline

    _worker["pipeline"] = Pipeline.from_manifest(manifest_text, runtime=runtime)


def _work(path: str, out_dir: str, retries: int, split: bool, block_seconds: float) -> dict:
    return corpus.process_one(_worker["pipeline"], Path(path), Path(out_dir), retries=retries, split=split,
                              block_seconds=block_seconds)


def _manifest_text(manifest) -> str:
    from . import manifest as manifest_mod

    return manifest_mod.load(manifest)[1]


def run(manifest, paths: Iterable[str | Path], out_dir: str | Path, *, engine: str = "local",
        workers: int | None = None, retries: int = 0, resume: bool = False, split: bool = False,
        runtime: str = "auto", block_seconds: float = files.DEFAULT_BLOCK_SECONDS, progress: bool = False) -> dict:
    """Runs the pipeline of ``manifest`` (dict, JSON text or path) once per file of
    ``paths`` (see :func:`remotemedia.corpus.expand`) and writes the per-file outputs and
    ``OUT/summary.json``; returns the summary.

    ``engine``: "local" (a process pool of ``workers``, default the CPU count) or "ray"
    (Ray Data; ``RAY_ADDRESS`` when set, else a local Ray). Failed files are recorded
    with their error and do not stop the batch; each is tried ``1 + retries`` times.
    ``resume`` skips files already done.
    """
    if engine not in ("local", "ray"):
        raise InvalidInputError(f"engine must be 'local' or 'ray', got {engine!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidInputError(f"retries must be a non-negative integer, got {retries!r}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    text = _manifest_text(manifest)
    _init_worker(text, runtime)  # validates here, before any work is sent out
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise InvalidInputError(f"out_dir must be a path, got {out_dir!r}")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInputError(f"{out_dir}: cannot create the output folder ({e})") from None
    all_paths = corpus.expand(paths)
    done = {str(p): r for p in all_paths if resume and (r := corpus.completed(out_dir, p))}
    todo = [p for p in all_paths if str(p) not in done]
    started = time.perf_counter()
    options = {"retries": retries, "split": split, "block_seconds": block_seconds}
    if engine == "local":
        records = _run_local(text, runtime, todo, out_dir, workers, options, progress)
    else:
        from . import ray as ray_engine

        records = ray_engine.run_files(text, runtime, todo, out_dir, workers, options)
    wall = time.perf_counter() - started
    summary = corpus.summary({**done, **{r["path"]: r for r in records}}, records, len(done), wall, engine, workers)
    corpus.atomic_write(out_dir / "summary.json", json.dumps(summary, indent=1))
    return summary


def _run_local(text: str, runtime: str, todo: list[Path], out_dir: Path, workers: int, options: dict,
               progress: bool) -> list[dict]:
    if not todo:
        return []
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="file", file=sys.stderr, desc="batch")
    records = []
    # spawn, not fork: a forked copy of a process whose native runtime has started its
    # threads is not safe.
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(text, runtime)) as pool:
        futures = [pool.submit(_work, str(p), str(out_dir), options["retries"], options["split"],
                               options["block_seconds"]) for p in todo]
        for future in as_completed(futures):
            records.append(future.result())
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return records
