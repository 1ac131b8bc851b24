"""`remotemedia batch` on a generated corpus: both engines give the per-file outputs of
`remotemedia run`, bad files are recorded and not fatal, and an interrupted run
resumes without redoing finished files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

import remotemedia as rm
from remotemedia import batch, cli, corpus, measure

ROOT = Path(__file__).resolve().parents[2]
VAD = ROOT / "examples" / "vad_pipeline.json"
RATE = 48000
BAD = ("corrupt_a.flac", "corrupt_b.wav")


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    """20 files: 17 good (FLAC and WAV, 3 s each, two with the same name in different
    folders), 2 corrupt, 1 empty."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "a").mkdir()
    (root / "b").mkdir()
    for i in range(17):
        folder = root / ("a" if i % 2 else "b")
        name = "same.flac" if i in (3, 4) else f"talk_{i:02d}.{'flac' if i % 3 else 'wav'}"
        soundfile.write(folder / name, measure.voiced_bursts(3.0, seed=i), RATE)
    (root / "a" / BAD[0]).write_bytes(b"fLaC but not really" * 10)
    (root / "b" / BAD[1]).write_bytes(b"RIFF\x00\x00")
    soundfile.write(root / "a" / "empty.wav", np.zeros((0, 2), np.int16), RATE)
    return root


def per_file_outputs(out: Path) -> dict[str, tuple]:
    """{path: (status, segments, event lines)} from a batch's output folder."""
    got = {}
    for record_path in (out / "files").glob("*-????????.json"):
        record = json.loads(record_path.read_text())
        segments = events = None
        if record["status"] == "ok":
            segments = (out / "files" / f"{record['id']}.segments.jsonl").read_text()
            events = (out / "files" / f"{record['id']}.events.jsonl").read_text()
        got[record["path"]] = (record["status"], segments, events)
    return got


def test_inputs_from_files_globs_folders_and_lists(corpus_dir, tmp_path):
    everything = corpus.expand([corpus_dir])
    assert len(everything) == 20
    assert corpus.expand([str(corpus_dir / "a" / "*.flac")]) == sorted(p for p in everything if p.parent.name == "a"
                                                                         and p.suffix == ".flac")
    listing = tmp_path / "list.txt"
    listing.write_text("# a comment\n" + "\n".join(str(p) for p in everything[:3]) + "\n\n")
    nemo = tmp_path / "manifest.jsonl"
    nemo.write_text("".join(json.dumps({"audio_filepath": str(p), "duration": 3.0}) + "\n" for p in everything[3:5]))
    assert corpus.expand([listing, nemo, everything[0]]) == sorted(everything[:5])
    with pytest.raises(rm.InvalidInputError, match="expected a JSON object"):
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"duration": 1}\n')
        corpus.expand([bad])


def test_local_batch_matches_run_and_records_bad_files(corpus_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["batch", str(VAD), str(corpus_dir), "--out", str(out), "--workers", "2", "--no-progress", "--json"])
    assert code == 1, "some files failed"
    summary = json.loads(capsys.readouterr().out)
    assert (summary["files"], summary["ok"], summary["failed"]) == (20, 18, 2)
    assert sorted(Path(f["path"]).name for f in summary["failures"]) == sorted(BAD)
    assert all(f["class"] == "InvalidInputError" and "cannot read this audio file" in f["message"]
               for f in summary["failures"])
    assert summary["audio_hours"] == pytest.approx(17 * 3 / 3600)
    assert json.loads((out / "summary.json").read_text()) == summary
    outputs = per_file_outputs(out)
    assert len(outputs) == 20
    # Each good file's segments equal those of `remotemedia run` on it.
    for path, (status, segments, _) in outputs.items():
        if Path(path).name in BAD:
            assert status == "failed"
            continue
        single = tmp_path / "single.json"
        assert cli.main(["run", str(VAD), "-i", path, "--segments", str(single), "--no-progress"]) == 0
        expected = [(s["start"], s["end"]) for s in json.loads(single.read_text())]  # written to the ms
        got = [(round(s["start"], 3), round(s["end"], 3)) for s in map(json.loads, segments.splitlines())]
        assert got == expected
        if Path(path).name != "empty.wav":
            assert len(got) >= 1
    assert not list((out / "files").glob("*.tmp")), "only complete files are left"


def test_retries_and_split(corpus_dir, tmp_path):
    out = tmp_path / "out"
    summary = batch.run(VAD, [corpus_dir / "a" / BAD[0], corpus_dir / "a" / "talk_01.flac"], out, workers=1,
                        retries=2, split=True)
    assert summary["failed"] == 1
    record = json.loads((out / "files" / f"{corpus.file_id(corpus_dir / 'a' / BAD[0])}.json").read_text())
    assert record["attempts"] == 3
    fid = corpus.file_id(corpus_dir / "a" / "talk_01.flac")
    segments = (out / "files" / f"{fid}.segments.jsonl").read_text().splitlines()
    assert len(list((out / "segments" / fid).glob("*.flac"))) == len(segments) >= 1


def test_an_interrupted_batch_resumes_without_redoing_finished_files(corpus_dir, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "remotemedia", "batch", str(VAD), str(corpus_dir), "--out", str(out), "--workers", "1",
           "--no-progress", "--block-ms", "5"]  # small blocks: slow enough to be caught mid-corpus
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((out / "files").glob("*-????????.json"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(child.pid, signal.SIGKILL)  # the batch and its worker, mid-corpus
    child.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in (out / "files").glob("*-????????.json")
                if json.loads(p.read_text())["status"] == "ok"}
    assert 0 < len(finished) < 18, "interrupted part-way"
    assert not (out / "summary.json").exists()
    summary = batch.run(VAD, [corpus_dir], out, workers=2, resume=True)
    assert (summary["files"], summary["ok"], summary["failed"]) == (20, 18, 2)
    assert summary["skipped"] == len(finished)
    again = {p.name: p.stat().st_mtime_ns for p in (out / "files").glob("*-????????.json")}
    assert all(again[name] == mtime for name, mtime in finished.items()), "finished files were not redone"
    assert len(per_file_outputs(out)) == 20


def test_ray_engine_gives_the_local_engines_outputs(corpus_dir, tmp_path):
    pytest.importorskip("ray.data", reason="Ray is not installed here (pip install 'remotemedia[ray]')")
    import ray

    local, remote = tmp_path / "local", tmp_path / "ray"
    batch.run(VAD, [corpus_dir], local, workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = batch.run(VAD, [corpus_dir], remote, engine="ray", workers=2)
        assert (summary["engine"], summary["files"], summary["ok"], summary["failed"]) == ("ray", 20, 18, 2)
        assert per_file_outputs(remote) == per_file_outputs(local)
        records = list((remote / "records").glob("*.json"))
        assert len(records) == 1, "records written with Ray's JSON writer, in one file"
        assert sum(1 for _ in records[0].read_text().splitlines()) == 20

        # PipelineMapper on a dataset of arrays, as Ray users compose their own.
        from remotemedia.ray import PipelineMapper

        audio = [measure.voiced_bursts(3.0, seed=i) for i in range(4)]
        rows = ray.data.from_items([{"audio": a, "sample_rate": RATE} for a in audio]).map_batches(
            PipelineMapper, fn_constructor_kwargs={"manifest": str(VAD)}, batch_size=2,
            compute=ray.data.ActorPoolStrategy(size=1)).take_all()
        p = rm.Pipeline.from_manifest(VAD)
        for a, row in zip(audio, rows):
            expected = [{"start": s["start"], "end": s["end"]} for s in p.run(rm.Audio(a, RATE))["vad.segments"]]
            assert row["status"] == "ok" and json.loads(row["segments"]) == expected
    finally:
        ray.shutdown()


def test_the_ray_engine_says_how_to_install_ray(monkeypatch, corpus_dir, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(rm.InvalidInputError, match=r"pip install 'remotemedia\[ray\]'"):
        batch.run(VAD, [corpus_dir / "a" / "talk_01.flac"], tmp_path / "out", engine="ray")


def test_bad_arguments_are_clean_errors(tmp_path):
    for kwargs, match in (({"engine": "spark"}, "engine must be"), ({"workers": 0}, "workers must be"),
                          ({"retries": -1}, "retries must be")):
        with pytest.raises(rm.InvalidInputError, match=match):
            batch.run(VAD, [], tmp_path, **kwargs)
    with pytest.raises(rm.ManifestError):
        batch.run({"version": "1", "nodes": [{"id": "x", "node_type": "Nope"}]}, [], tmp_path)
    for paths in (None, 3, [None], [b"x"], ["a\0b"]):
        with pytest.raises(rm.InvalidInputError):
            batch.run(VAD, paths, tmp_path)
    with pytest.raises(rm.InvalidInputError, match="out_dir must be a path"):
        batch.run(VAD, [], None)
    (tmp_path / "file").write_text("")
    with pytest.raises(rm.InvalidInputError, match="cannot create the output folder"):
        batch.run(VAD, [], tmp_path / "file" / "out")


def test_a_single_path_is_one_input_not_its_characters(corpus_dir):
    assert corpus.expand(str(corpus_dir)) == corpus.expand([corpus_dir]) != []
