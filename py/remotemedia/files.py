"""Running a pipeline over an audio file in blocks (memory stays flat whatever the
length), and writing what comes out: audio, events, speech segments."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from . import audiofile
from .audio import Audio
from .errors import InvalidInputError

#: Seconds of audio pushed at a time.
DEFAULT_BLOCK_SECONDS = 1.0
#: Extensions ``write_segments`` knows.
SEGMENT_FORMATS = (".json", ".csv", ".srt", ".rttm")


def is_segment(item) -> bool:
    """A speech segment: a JSON object with numeric ``start`` and ``end`` (seconds)."""
    return (isinstance(item, dict) and all(isinstance(item.get(k), (int, float)) and not isinstance(item.get(k), bool)
                                           for k in ("start", "end")))


def segments_of(items) -> list[dict]:
    """The speech segments among JSON items, as ``{"start", "end"}`` objects in order."""
    return [{"start": i["start"], "end": i["end"]} for i in items if is_segment(i)]


def process_file(pipeline, in_path: str | Path | dict[str, str | Path], out_path: str | Path | None = None,
                 on_event: Callable[[str, object], None] | None = None, *,
                 block_seconds: float = DEFAULT_BLOCK_SECONDS, progress: bool = False,
                 metrics: dict | None = None) -> dict[str, list]:
    """Streams the audio file ``in_path`` through ``pipeline`` in blocks of
    ``block_seconds`` and returns the JSON items (events, segments) keyed like
    ``Pipeline.run``'s result. For a pipeline with named inputs, ``in_path`` maps each
    input's name to its file: each step pushes the next block of every file that has
    one (at its own rate), until all have ended.

    Audio items go to ``out_path`` (format from its extension) when given: the first
    audio output key to ``out_path`` itself, any other to ``STEM.KEY.SUFFIX`` beside it.
    With ``on_event``, each JSON item is handed to ``on_event(key, item)`` as it comes
    and nothing is collected, so memory stays flat however many events there are.
    ``progress=True`` shows a progress bar on stderr (audio seconds done, x real time,
    ETA). A ``metrics`` dict is filled with the stream's metrics (as ``Stream.metrics()``).
    """
    if not callable(getattr(pipeline, "stream", None)):
        raise InvalidInputError(f"process_file takes a remotemedia.Pipeline, got {type(pipeline).__name__}")
    if on_event is not None and not callable(on_event):
        raise InvalidInputError(f"on_event must be callable, got {type(on_event).__name__}")
    if isinstance(block_seconds, bool) or not isinstance(block_seconds, (int, float)) or not 0.001 <= block_seconds <= 60:
        raise InvalidInputError(f"block_seconds must be from 0.001 to 60, got {block_seconds!r}")
    collected: dict[str, list] = {}
    emit = on_event or (lambda key, item: collected.setdefault(key, []).append(item))
    outputs = _AudioOutputs(out_path)
    paths = in_path if isinstance(in_path, dict) else {None: in_path}
    with contextlib.ExitStack() as opened:
        readers = {name: opened.enter_context(audiofile.Reader(path)) for name, path in paths.items()}
        stream = opened.enter_context(pipeline.stream())
        bar = _progress_bar(next(iter(readers.values())), enabled=progress)
        blocks = {name: r.blocks(max(1, round(block_seconds * r.sample_rate))) for name, r in readers.items()}
        try:
            while blocks:
                step = {name: block for name, block in ((n, next(b, None)) for n, b in blocks.items()) if block is not None}
                blocks = {name: b for name, b in blocks.items() if name in step}
                if not step:
                    break
                stream.push(step[None] if None in step else step)
                _dispatch(stream.pull(), outputs, emit)
                bar(next(iter(step.values())).duration)
            stream.flush()
            _dispatch(stream.pull(), outputs, emit)
            if metrics is not None:
                metrics.update(stream.metrics())
        finally:
            bar(None)
            outputs.close()
    return collected


def _dispatch(items, outputs: _AudioOutputs, emit) -> None:
    for key, item in items:
        if isinstance(item, Audio):
            outputs.write(key, item)
        else:
            emit(key, item)


class _AudioOutputs:
    """One writer per audio output key, opened at its first item."""

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        self.writers: dict[str, audiofile.Writer] = {}

    def write(self, key: str, audio: Audio) -> None:
        if self.path is None:
            return
        if key not in self.writers:
            path = self.path if not self.writers else self.path.with_name(f"{self.path.stem}.{key}{self.path.suffix}")
            self.writers[key] = audiofile.Writer(path)
        self.writers[key].write(audio)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def _progress_bar(reader: audiofile.Reader, enabled: bool) -> Callable[[float | None], None]:
    """A callable taking the seconds just done (None: finished) that draws a tqdm bar."""
    if not enabled:
        return lambda seconds: None
    from tqdm import tqdm

    total = reader.duration
    fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}{postfix}]" if total else None
    bar = tqdm(total=total, desc=Path(reader.path).name, unit="s", file=sys.stderr, bar_format=fmt, leave=True)
    started = time.perf_counter()

    def advance(seconds: float | None) -> None:
        if seconds is None:
            bar.close()
            return
        bar.update(seconds)
        bar.set_postfix_str(f"{bar.n / max(time.perf_counter() - started, 1e-9):.0f}x real time", refresh=False)

    return advance


class EventsFile:
    """JSON items written as ``{"key": [item, ...], ...}`` without holding them: each
    key's items are spooled to a temporary file and joined at :meth:`close`."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.spools: dict[str, IO[str]] = {}

    def add(self, key: str, item) -> None:
        spool = self.spools.get(key)
        if spool is None:
            spool = self.spools[key] = tempfile.TemporaryFile("w+", encoding="utf-8")
        else:
            spool.write(",\n")
        spool.write("    " + json.dumps(item))

    def close(self) -> None:
        self.out.write("{")
        for i, (key, spool) in enumerate(self.spools.items()):
            self.out.write(("," if i else "") + f"\n  {json.dumps(key)}: [\n")
            spool.seek(0)
            while chunk := spool.read(1 << 16):
                self.out.write(chunk)
            self.out.write("\n  ]")
            spool.close()
        self.out.write("\n}\n" if self.spools else "}\n")
        self.out.flush()


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


def segment_format(path: str | Path) -> str:
    """The segments format of ``path`` (its extension, one of :data:`SEGMENT_FORMATS`)."""
    kind = Path(path).suffix.lower()
    if kind not in SEGMENT_FORMATS:
        raise InvalidInputError(f"{path}: segments are written as {', '.join(SEGMENT_FORMATS)}, not '{kind}'")
    return kind


def write_segments(path: str | Path, segments: list[dict], recording: str = "audio") -> None:
    """Writes speech segments (``start``/``end`` in seconds) in the format of the
    extension: ``.json`` (a list of objects), ``.csv`` (start, end, duration), ``.srt``
    (subtitles reading "speech") or ``.rttm`` (NIST, speaker "speech", file id
    ``recording``): what transcription and diarization tools read."""
    path = Path(path)
    kind = segment_format(path)
    rows = [(round(s["start"], 3), round(s["end"], 3)) for s in segments]
    with open(path, "w", newline="", encoding="utf-8") as f:
        if kind == ".json":
            json.dump([{"start": a, "end": b} for a, b in rows], f, indent=2)
            f.write("\n")
        elif kind == ".csv":
            out = csv.writer(f)
            out.writerow(["start", "end", "duration"])
            out.writerows((a, b, round(b - a, 3)) for a, b in rows)
        elif kind == ".srt":
            for i, (a, b) in enumerate(rows, 1):
                f.write(f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\nspeech\n\n")
        else:
            for a, b in rows:
                f.write(f"SPEAKER {recording} 1 {a:.3f} {b - a:.3f} <NA> <NA> speech <NA> <NA>\n")


def split_segments(in_path: str | Path, segments: list[dict], out_dir: str | Path) -> list[Path]:
    """Writes each segment's audio, cut from ``in_path``, to its own file in ``out_dir``
    (``STEM_0001.EXT``, the input's format where it can be written, else WAV)."""
    in_path, out_dir = Path(in_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = in_path.suffix.lower() if in_path.suffix.lower() in (".wav", ".flac", ".ogg") and audiofile.soundfile else ".wav"
    written = []
    with audiofile.Reader(in_path) as reader:
        for i, s in enumerate(segments, 1):
            path = out_dir / f"{in_path.stem}_{i:04d}{suffix}"
            with audiofile.Writer(path) as w:
                for block in reader.read(s["start"], s["end"]):
                    w.write(block)
            written.append(path)
    return written
