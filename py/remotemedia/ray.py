"""Ray Data for corpora bigger than one machine (``pip install 'remotemedia[ray]'``).

:class:`PipelineMapper` is the callable class to hand to ``Dataset.map_batches``: Ray
builds it once per actor, so each actor keeps one pipeline for every batch it gets.
``remotemedia batch --engine ray`` (:func:`run_files`) uses it on a dataset of paths.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from . import corpus, files
from .audio import Audio
from .errors import InvalidInputError

INSTALL_HINT = "the Ray engine needs Ray Data: pip install 'remotemedia[ray]' (or 'ray[data]')"


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise InvalidInputError(f"{INSTALL_HINT} ({e})") from None
    return ray


class PipelineMapper:
    """A ``map_batches`` callable running one pipeline per actor.

    Batches with a ``path`` column: each file is streamed through the pipeline; with
    ``out_dir`` its outputs and record are written as ``remotemedia batch`` writes them.
    Batches with ``audio`` (arrays of samples) and ``sample_rate`` columns: each array
    is run in one go. Either way the result has one row per input: ``status``,
    ``audio_seconds``, ``segments`` (JSON text of ``[{"start", "end"}]``), ``metrics``
    (JSON text) and ``error`` (JSON text, or "" when it went well), plus ``path`` for
    paths.
    """

    def __init__(self, manifest, out_dir: str | None = None, runtime: str = "auto", retries: int = 0,
                 split: bool = False, block_seconds: float = files.DEFAULT_BLOCK_SECONDS):
        from .pipeline import Pipeline

        self.pipeline = Pipeline.from_manifest(manifest, runtime=runtime)
        self.out_dir = Path(out_dir) if out_dir else None
        self.options = {"retries": retries, "split": split, "block_seconds": block_seconds}

    def __call__(self, rows: dict) -> dict:
        if "path" in rows:
            return _columns([self._file(str(p)) for p in rows["path"]])
        if "audio" in rows and "sample_rate" in rows:
            return _columns([self._array(a, int(r)) for a, r in zip(rows["audio"], rows["sample_rate"])])
        raise InvalidInputError(f"PipelineMapper takes a 'path' column or 'audio' and 'sample_rate'; got {sorted(rows)}")

    def _file(self, path: str) -> dict:
        if self.out_dir is not None:
            record = corpus.process_one(self.pipeline, Path(path), self.out_dir, **self.options)
            segments = []
            if record["status"] == "ok":
                text = (self.out_dir / "files" / f"{record['id']}.segments.jsonl").read_text()
                segments = [json.loads(line) for line in text.splitlines()]
            return {"path": path, "record": json.dumps(record), **_row(record, segments, {})}
        events: list = []
        metrics: dict = {}
        try:
            files.process_file(self.pipeline, path, on_event=lambda k, i: events.append(i),
                               block_seconds=self.options["block_seconds"], metrics=metrics)
        except Exception as e:  # one row per input, failures included
            return {"path": path, **_failed(e)}
        segments = files.segments_of(events)
        return {"path": path, **_row({"status": "ok", "error": None}, segments, metrics)}

    def _array(self, samples, rate: int) -> dict:
        try:
            with self.pipeline.stream() as s:
                s.push(Audio(np.ascontiguousarray(samples), rate))
                s.flush()
                items = [i for _, i in s.pull()]
                metrics = s.metrics()
        except Exception as e:  # one row per input, failures included
            return _failed(e)
        segments = files.segments_of(items)
        return _row({"status": "ok", "error": None}, segments, metrics)


def _row(record: dict, segments: list, metrics: dict) -> dict:
    seconds = record.get("audio_seconds", metrics.get("pipeline", {}).get("audio_seconds", 0.0))
    return {"status": record["status"], "audio_seconds": float(seconds), "segments": json.dumps(segments),
            "metrics": json.dumps(metrics), "error": json.dumps(record["error"]) if record["error"] else ""}


def _failed(e: Exception) -> dict:
    return _row({"status": "failed", "error": corpus.error_of(e), "audio_seconds": 0.0}, [], {})


def _columns(rows: list[dict]) -> dict:
    return {k: np.array([r[k] for r in rows], dtype=object if k != "audio_seconds" else np.float64) for k in rows[0]}


def run_files(manifest_text: str, runtime: str, paths: list[Path], out_dir: Path, workers: int, options: dict) -> list[dict]:
    """The Ray engine of :func:`remotemedia.batch.run`: a dataset of paths, one
    :class:`PipelineMapper` per actor (``workers`` actors), the per-file outputs
    written by the actors (``out_dir`` must be reachable from every node of the
    cluster), and the records written with Ray's JSON writer to ``OUT/records/``.
    Connects to ``RAY_ADDRESS`` when set, else starts a local Ray."""
    ray = _ray()
    if not paths:
        return []
    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address or None, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    dataset = ray.data.from_items([{"path": str(p)} for p in paths])
    results = dataset.map_batches(PipelineMapper, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
                                  fn_constructor_kwargs={"manifest": manifest_text, "out_dir": str(out_dir.resolve()),
                                                         "runtime": runtime, **options}).materialize()
    # One file of records per run (Ray would otherwise write one per block, i.e. per file).
    results.select_columns(["record"]).write_json(str(out_dir / "records"), min_rows_per_file=len(paths))
    return [json.loads(row["record"]) for row in results.take_all()]
