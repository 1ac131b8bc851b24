"""The files of a corpus and what one file's run leaves behind (for ``batch`` and ``ray``).

Per input file, in ``OUT/files/``, each written atomically (a temporary file, then a
rename), the record last:

- ``ID.segments.jsonl``: one speech segment per line (``start``, ``end`` in seconds);
- ``ID.events.jsonl``: every JSON item of the sinks, one ``{"key", "item"}`` per line;
- ``ID.metrics.json``: the stream's metrics;
- ``ID.json``: the record (path, status "ok" or "failed", audio seconds, wall seconds,
  segment count, and for a failure the error's class, node id and message).

``ID`` is the file's stem and a hash of its absolute path, so equal names in different
folders do not collide.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

from . import files
from .errors import InvalidInputError

#: File extensions taken from a directory.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".w64", ".caf")
#: JSONL keys that may hold a path in a list file (NeMo manifests use ``audio_filepath``).
PATH_KEYS = ("path", "audio_filepath", "audio")


def expand(inputs: Iterable[str | Path] | str | Path) -> list[Path]:
    """Files from files, globs, directories (searched recursively for audio files), and
    list files (``.txt``/``.list``: one path per line; ``.jsonl``: objects with a
    ``path`` or ``audio_filepath``; relative paths from the list's folder). Sorted, each once."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    try:
        inputs = list(inputs)
    except TypeError:
        raise InvalidInputError(f"inputs must be paths (str or os.PathLike) or a list of them, got {type(inputs).__name__}") from None
    found: dict[str, Path] = {}
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)) or not os.fspath(item) or "\0" in os.fspath(item):
            raise InvalidInputError(f"not a usable input path: {item!r}")
        item = os.fspath(item)
        if any(c in item for c in "*?[") and not Path(item).exists():
            matches = [Path(m) for m in glob.glob(item, recursive=True)]
        elif Path(item).is_dir():
            matches = [p for p in Path(item).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()]
        elif Path(item).suffix.lower() in (".txt", ".list", ".jsonl"):
            matches = _listed(Path(item))
        else:
            matches = [Path(item)]
        for m in matches:
            found.setdefault(str(m.resolve()), m.resolve())
    return [found[k] for k in sorted(found)]


def _listed(path: Path) -> list[Path]:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as e:
        raise InvalidInputError(f"{path}: cannot read the list ({e})") from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line or line.startswith("#"):
            continue
        if path.suffix.lower() == ".jsonl":
            try:
                row = json.loads(line)
                line = next(row[k] for k in PATH_KEYS if isinstance(row.get(k), str))
            except (ValueError, StopIteration, AttributeError):
                raise InvalidInputError(f"{path}:{n}: expected a JSON object with one of {', '.join(PATH_KEYS)}") from None
        p = Path(line)
        out.append(p if p.is_absolute() else path.parent / p)
    return out


def error_of(e: Exception) -> dict:
    """An exception as a record's ``error``: class, node id (or None), message."""
    return {"class": type(e).__name__, "node_id": getattr(e, "node_id", None), "message": str(e)}


def file_id(path: Path) -> str:
    """The name of a file's outputs: its stem and a hash of its absolute path."""
    return f"{path.stem}-{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]}"


def atomic_write(path: Path, text: str) -> None:
    """Writes ``text`` to a temporary file beside ``path``, then renames it into place."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jsonl(rows: list) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def process_one(pipeline, path: Path, out_dir: Path, *, retries: int = 0, split: bool = False,
                block_seconds: float = files.DEFAULT_BLOCK_SECONDS) -> dict:
    """Runs ``pipeline`` on one file (up to ``1 + retries`` attempts) and writes its
    outputs and record; returns the record. A failure is recorded, never raised."""
    folder = out_dir / "files"
    folder.mkdir(parents=True, exist_ok=True)
    fid = file_id(path)
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        events: list = []
        metrics: dict = {}
        try:
            files.process_file(pipeline, path, on_event=lambda k, i, events=events: events.append({"key": k, "item": i}),
                               block_seconds=block_seconds, metrics=metrics)
            error = None
            break
        except Exception as e:  # recorded in the summary: one bad file must not stop the batch
            error = error_of(e)
            if attempts > retries:
                break
    segments = files.segments_of(e["item"] for e in events) if error is None else []
    record = {"path": str(path), "id": fid, "status": "ok" if error is None else "failed", "attempts": attempts,
              "audio_seconds": metrics.get("pipeline", {}).get("audio_seconds", 0.0) if error is None else 0.0,
              "wall_seconds": round(time.perf_counter() - started, 6), "segments": len(segments), "error": error}
    if error is None:
        atomic_write(folder / f"{fid}.segments.jsonl", _jsonl(segments))
        atomic_write(folder / f"{fid}.events.jsonl", _jsonl(events))
        atomic_write(folder / f"{fid}.metrics.json", json.dumps(metrics, indent=1))
        if split:
            files.split_segments(path, segments, out_dir / "segments" / fid)
    atomic_write(folder / f"{fid}.json", json.dumps(record, indent=1))
    return record


def completed(out_dir: Path, path: Path) -> dict | None:
    """The record of a file done with status "ok" in an earlier run, or None."""
    try:
        record = json.loads((out_dir / "files" / f"{file_id(path)}.json").read_text())
    except (OSError, ValueError):
        return None
    return record if record.get("status") == "ok" else None


def summary(records: dict[str, dict], new: list[dict], skipped: int, wall: float, engine: str, workers: int) -> dict:
    """Files, audio and failures over the whole corpus; × real time over this run's files."""
    rows = [records[k] for k in sorted(records)]
    failed = [{"path": r["path"], **r["error"]} for r in rows if r["status"] != "ok"]
    done_now = sum(r["audio_seconds"] for r in new)
    return {"engine": engine, "workers": workers, "files": len(rows), "ok": len(rows) - len(failed),
            "failed": len(failed), "skipped": skipped, "audio_hours": sum(r["audio_seconds"] for r in rows) / 3600,
            "wall_seconds": round(wall, 3), "x_real_time": round(done_now / wall, 2) if wall > 0 and new else None,
            "failures": failed}
