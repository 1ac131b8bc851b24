"""Real recordings through the command line and rm.process_file: every file format
libsndfile reads, outputs in the formats tools read, flat memory, progress, and the
standard-library fallback."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile

import remotemedia as rm
from remotemedia import audiofile, cli, files, measure

ROOT = Path(__file__).resolve().parents[2]
VAD = ROOT / "examples" / "vad_pipeline.json"
RATE = 48000


def bursts(seconds: float = 6.0, seed: int = 1) -> np.ndarray:
    return measure.voiced_bursts(seconds, seed, RATE)


# (file name, soundfile subtype) for each input kind the CLI must read.
INPUTS = [("in.flac", "PCM_16"), ("in.ogg", "VORBIS"), ("in_float.wav", "FLOAT"), ("in_24.wav", "PCM_24")]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recordings")
    x = bursts()
    paths = {}
    for name, subtype in INPUTS:
        data = x.astype(np.float32) / 32768 if subtype in ("FLOAT", "VORBIS") else x
        soundfile.write(folder / name, data, RATE, subtype=subtype)
        paths[name] = folder / name
    return paths


def read_segments(path: Path) -> list[tuple[float, float]]:
    """Segments back from a file written by --segments, whatever its format."""
    text = path.read_text()
    if path.suffix == ".json":
        return [(s["start"], s["end"]) for s in json.loads(text)]
    if path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert all(abs(float(r["end"]) - float(r["start"]) - float(r["duration"])) < 2e-3 for r in rows)
        return [(float(r["start"]), float(r["end"])) for r in rows]
    if path.suffix == ".srt":
        def seconds(clock):
            h, m, s = clock.replace(",", ".").split(":")
            return int(h) * 3600 + int(m) * 60 + float(s)
        blocks = [b.splitlines() for b in text.strip().split("\n\n")]
        assert [int(b[0]) for b in blocks] == list(range(1, len(blocks) + 1))
        assert all(b[2] == "speech" for b in blocks)
        return [tuple(seconds(c) for c in b[1].split(" --> ")) for b in blocks]
    rows = [line.split() for line in text.splitlines()]
    assert all(r[0] == "SPEAKER" and r[7] == "speech" for r in rows)
    return [(float(r[3]), round(float(r[3]) + float(r[4]), 3)) for r in rows]


@pytest.mark.parametrize("name", [n for n, _ in INPUTS])
@pytest.mark.parametrize("kind", files.SEGMENT_FORMATS)
def test_cli_reads_each_format_and_writes_segments_that_match_the_events(recordings, name, kind, tmp_path, capsys):
    events, segments = tmp_path / "events.json", tmp_path / f"segments{kind}"
    code = cli.main(["run", str(VAD), "-i", str(recordings[name]), "--events", str(events), "--segments", str(segments),
                     "--no-progress"])
    assert code == 0
    assert capsys.readouterr().out == "", "stdout carries only what was asked for"
    from_events = [(round(s["start"], 3), round(s["end"], 3)) for s in json.loads(events.read_text())["vad.segments"]]
    assert len(from_events) >= 3, "the bursts are found"
    got = read_segments(segments)
    assert len(got) == len(from_events)
    np.testing.assert_allclose(np.array(got), np.array(from_events), atol=1e-3)


def test_cli_streams_the_same_results_as_a_one_shot_run(recordings, tmp_path):
    """Block by block or all at once, the events are the same (lossless input)."""
    events = tmp_path / "events.json"
    assert cli.main(["run", str(VAD), "-i", str(recordings["in_24.wav"]), "--events", str(events), "--no-progress",
                     "--block-ms", "70"]) == 0
    whole = rm.Pipeline.from_manifest(VAD).run(audiofile.read(recordings["in_24.wav"]))
    got = json.loads(events.read_text())
    assert got["vad.segments"] == whole["vad.segments"]
    assert got["vad"] == whole["vad"]


def test_events_to_stdout_and_a_json_summary(recordings, capsys):
    assert cli.main(["run", str(VAD), "-i", str(recordings["in.flac"]), "--events", "-", "--no-progress"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"vad", "vad.segments"}
    assert cli.main(["run", str(VAD), "-i", str(recordings["in.flac"]), "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["audio_seconds"] == pytest.approx(6.0) and summary["segments"] >= 3


@pytest.mark.parametrize("suffix,subtype", [(".flac", "PCM_16"), (".wav", "FLOAT"), (".ogg", "VORBIS")])
def test_audio_output_format_follows_the_extension(recordings, tmp_path, suffix, subtype, runtime):
    manifest = tmp_path / "m.json"
    fmt = "f32" if subtype != "PCM_16" else "i16"
    manifest.write_text(json.dumps({"version": "1", "nodes": [
        {"id": "f", "node_type": "FormatConverter", "params": {"format": "f32"}},
        {"id": "r", "node_type": "Resample", "params": {"target_rate": 16000}},
        {"id": "o", "node_type": "FormatConverter", "params": {"format": fmt}}],
        "connections": [{"from": "f", "to": "r"}, {"from": "r", "to": "o"}]}))
    out = tmp_path / f"out{suffix}"
    assert cli.main(["run", str(manifest), "-i", str(recordings["in.flac"]), "-o", str(out), "--runtime", runtime,
                     "--no-progress"]) == 0
    info = soundfile.info(out)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 2, subtype)
    assert info.frames == 2 * RATE  # 6 s at 16 kHz


def test_split_writes_each_segment_cut_from_the_input(recordings, tmp_path):
    segments, folder = tmp_path / "s.json", tmp_path / "cuts"
    assert cli.main(["run", str(VAD), "-i", str(recordings["in.flac"]), "--segments", str(segments), "--split",
                     str(folder), "--no-progress"]) == 0
    expected = json.loads(segments.read_text())
    cuts = sorted(folder.glob("in_*.flac"))
    assert len(cuts) == len(expected) >= 3
    original, _ = soundfile.read(recordings["in.flac"], dtype="int16")
    for cut, s in zip(cuts, expected):
        data, rate = soundfile.read(cut, dtype="int16")
        first = round(s["start"] * RATE)
        assert rate == RATE and len(data) == round(s["end"] * RATE) - first
        np.testing.assert_array_equal(data, original[first:first + len(data)])


def test_progress_bar_on_stderr_when_asked(recordings, capsys):
    assert cli.main(["run", str(VAD), "-i", str(recordings["in.flac"]), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "100%" in err and "6.0/6.0 s" in err and re.search(r"\d+x real time", err)


def test_process_file_collects_or_hands_over_events(recordings, tmp_path, runtime):
    p = rm.Pipeline.from_manifest(VAD, runtime=runtime)
    collected = rm.process_file(p, recordings["in_24.wav"])
    handed: list = []
    assert rm.process_file(p, recordings["in_24.wav"], on_event=lambda k, i: handed.append((k, i))) == {}
    assert [i for k, i in handed if k == "vad.segments"] == collected["vad.segments"]
    metrics: dict = {}
    rm.process_file(p, recordings["in_24.wav"], metrics=metrics)
    assert metrics["pipeline"]["audio_seconds"] == pytest.approx(6.0)
    assert metrics["session"]["chunks_in"] == 6, "1 s blocks"


def test_unreadable_and_unwritable_files_are_clean_errors(tmp_path, recordings):
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not audio at all")
    p = rm.Pipeline.from_manifest(VAD)
    with pytest.raises(rm.InvalidInputError, match="cannot read this audio file"):
        rm.process_file(p, junk)
    with pytest.raises(rm.InvalidInputError, match="segments are written as"):
        files.write_segments(tmp_path / "s.txt", [])
    assert cli.main(["run", str(VAD), "-i", str(junk)]) == 2
    segments = tmp_path / "s.txt"
    assert cli.main(["run", str(VAD), "-i", str(recordings["in.flac"]), "--segments", str(segments)]) == 2
    assert not segments.exists(), "refused before the run, nothing written"


def test_without_soundfile_pcm_wav_still_reads(tmp_path, monkeypatch):
    x = bursts(2.0)
    for subtype in ("PCM_16", "PCM_24"):
        path = tmp_path / f"{subtype}.wav"
        soundfile.write(path, x, RATE, subtype=subtype)
        expected = audiofile.read(path)
        monkeypatch.setattr(audiofile, "soundfile", None)
        got = audiofile.read(path)
        monkeypatch.undo()
        assert got == expected and got.samples.dtype == (np.int16 if subtype == "PCM_16" else np.int32)
    soundfile.write(tmp_path / "x.flac", x, RATE)
    monkeypatch.setattr(audiofile, "soundfile", None)
    with pytest.raises(rm.InvalidInputError, match="install soundfile"):
        audiofile.read(tmp_path / "x.flac")
    audiofile.write(tmp_path / "back.wav", audiofile.read(tmp_path / "PCM_16.wav"))
    assert audiofile.read(tmp_path / "back.wav").samples.shape == (2 * RATE, 2)


def test_memory_stays_flat_on_a_long_file(tmp_path):
    """Five minutes of 48 kHz stereo: loaded whole it would take over 170 MB (int16 plus
    its f32 conversion); streamed, the process stays under 150 MB at its peak."""
    path = tmp_path / "long.flac"
    with soundfile.SoundFile(path, "w", RATE, 2, "PCM_16") as f:
        for i in range(50):
            f.write(bursts(6.0, seed=i))
    code = textwrap.dedent(f"""
        from remotemedia import cli
        assert cli.main(["run", {str(VAD)!r}, "-i", {str(path)!r}, "--segments", {str(tmp_path / "s.rttm")!r},
                         "--no-progress"]) == 0
        # VmHWM: this process's own peak (getrusage's ru_maxrss would count the parent's
        # memory at fork, which Linux carries across exec).
        print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.split()[-1]) / 1024
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
    assert len((tmp_path / "s.rttm").read_text().splitlines()) > 100


@pytest.mark.parametrize("args,match", [
    ((None,), "must be a str or os.PathLike"), (("",), "not a usable file path"), (("a\0b.wav",), "not a usable file path"),
    ((b"x.wav",), "must be a str or os.PathLike"),
])
def test_process_file_refuses_hostile_arguments_cleanly(args, match):
    p = rm.Pipeline.from_manifest(VAD)
    with pytest.raises(rm.InvalidInputError, match=match):
        rm.process_file(p, *args)


def test_process_file_checks_its_other_arguments(recordings):
    p = rm.Pipeline.from_manifest(VAD)
    for kwargs, match in (({"block_seconds": float("nan")}, "block_seconds"), ({"block_seconds": True}, "block_seconds"),
                          ({"on_event": 3}, "on_event must be callable")):
        with pytest.raises(rm.InvalidInputError, match=match):
            rm.process_file(p, recordings["in.flac"], **kwargs)
    with pytest.raises(rm.InvalidInputError, match="takes a remotemedia.Pipeline"):
        rm.process_file("pipeline.json", recordings["in.flac"])
    with pytest.raises(rm.InvalidInputError, match="cannot write this audio format"):
        rm.process_file(rm.Pipeline().add_node("g", "Gain"), recordings["in.flac"],
                        recordings["in.flac"].parent / "out.unknownext")
