"""The ``remotemedia`` command: ``run``, ``batch``, ``plan``, ``nodes``, ``plugins``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import _contract, audiofile, batch, catalog, files, native, plugins
from . import caps as caps_mod
from . import plan as plan_mod
from .errors import InvalidInputError, PluginError, RemoteMediaError
from .pipeline import RUNTIMES, Pipeline


def _progress(message: str) -> None:
    print(f"[remotemedia] {message}", file=sys.stderr, flush=True)


def _native_summary() -> str:
    if native.available():
        return f"native library {native.library_version()}"
    return f"pure-Python runtime: {native.IMPORT_ERROR or 'native disabled by REMOTEMEDIA_DISABLE_NATIVE'}"


def _input_files(given: list[str], names: list[str]) -> dict:
    """``--input`` values as {input name: path} (the key None for a pipeline's one
    unnamed input): ``NAME=PATH`` for each named input, or one plain path."""
    if names == [_contract.MANIFEST["default_input"]] and len(given) == 1 and "=" not in given[0]:
        return {None: given[0]}
    pairs = {}
    for value in given:
        name, sep, path = value.partition("=")
        if not sep or name not in names:
            raise InvalidInputError(f"--input {value!r}: this pipeline's inputs are {', '.join(names)}; give each as "
                                    f"--input NAME=PATH")
        if name in pairs:
            raise InvalidInputError(f"--input: '{name}' is given twice")
        pairs[name] = path
    return pairs


def cmd_run(args) -> int:
    started = time.perf_counter()
    for path in args.plugin:
        loaded = plugins.load_plugin(path)
        _progress(f"loaded plugin {loaded['name']} {loaded['version']} from {loaded['file']}")
    pipeline = Pipeline.from_manifest(Path(args.manifest), runtime=args.runtime)
    _progress(f"pipeline '{args.manifest}' on the {pipeline.runtime} runtime: {pipeline.node_runtimes()}")
    inputs = _input_files(args.input, pipeline.inputs)
    for name, path in inputs.items():
        with audiofile.Reader(path) as r:
            seconds = r.duration
            _progress(f"reading {path}{'' if name is None else f' as {name}'}: {'?' if seconds is None else f'{seconds:.2f}'} "
                      f"s, {r.channels} ch, {r.sample_rate} Hz, {r.dtype}")
    first = next(iter(inputs.values()))
    if args.segments:
        files.segment_format(args.segments)  # an unknown extension fails now, not after the run
    segments: list[dict] = []
    events = None
    if args.events:
        events = files.EventsFile(sys.stdout if args.events == "-" else open(args.events, "w", encoding="utf-8"))

    def on_event(key, item):
        if files.is_segment(item):
            segments.append(item)
        if events is not None:
            events.add(key, item)

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    metrics: dict = {}
    t0 = time.perf_counter()
    try:
        files.process_file(pipeline, inputs if None not in inputs else first, args.output, on_event,
                           block_seconds=args.block_ms / 1000, progress=progress, metrics=metrics)
    finally:
        if events is not None:
            events.close()
            if args.events != "-":
                events.out.close()
    elapsed = time.perf_counter() - t0
    audio_seconds = metrics["pipeline"]["audio_seconds"]
    _progress(f"ran in {elapsed:.2f} s ({audio_seconds / max(elapsed, 1e-9):.0f}x real time)")
    if args.output:
        _progress(f"wrote audio to {args.output}")
    if args.events and args.events != "-":
        _progress(f"wrote events to {args.events}")
    if args.segments:
        files.write_segments(args.segments, segments, Path(first).stem)
        _progress(f"wrote {len(segments)} segments to {args.segments}")
    if args.split:
        written = files.split_segments(first, segments, args.split)
        _progress(f"wrote {len(written)} segment files to {args.split}")
    if args.metrics:
        Path(args.metrics).write_text(json.dumps(metrics, indent=2))
        _progress(f"wrote metrics to {args.metrics}")
        print_metrics(metrics)
    if args.json:
        print(json.dumps({"input": first if None in inputs else inputs, "audio_seconds": audio_seconds, "wall_seconds": round(elapsed, 6),
                          "x_real_time": round(audio_seconds / max(elapsed, 1e-9), 2), "segments": len(segments),
                          "output": args.output, "events": args.events, "runtime": pipeline.runtime}))
    _progress(f"done in {time.perf_counter() - started:.2f} s")
    return 0


def cmd_batch(args) -> int:
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    summary = batch.run(Path(args.manifest), args.inputs, args.out, engine=args.engine, workers=args.workers,
                        retries=args.retries, resume=args.resume, split=args.split, runtime=args.runtime,
                        block_seconds=args.block_ms / 1000, progress=progress)
    _progress(f"{summary['files']} files ({summary['ok']} ok, {summary['failed']} failed, {summary['skipped']} already "
              f"done), {summary['audio_hours']:.3f} h of audio in {summary['wall_seconds']:.1f} s"
              + (f" ({summary['x_real_time']:.0f}x real time)" if summary["x_real_time"] else ""))
    for f in summary["failures"]:
        where = f" in node '{f['node_id']}'" if f["node_id"] else ""
        _progress(f"failed: {f['path']}: {f['class']}{where}: {f['message']}")
    _progress(f"wrote {Path(args.out) / 'summary.json'} and the per-file outputs in {Path(args.out) / 'files'}")
    if args.json:
        print(json.dumps(summary))
    return 0 if summary["failed"] == 0 else 1


def print_metrics(metrics: dict) -> None:
    """A per-node summary table on stderr."""
    rows = [("node", "type", "runtime", "calls", "errors", "retries", "mean µs", "p99 µs", "total ms", "out samples")]
    for n in metrics["nodes"]:
        t = n["time_us"]
        rows.append((n["id"], n["node_type"], n["runtime"], str(n["calls"]), str(n["errors"]), str(n["retries"]),
                     f"{t['mean']:.1f}", f"{t['p99']:.1f}", f"{t['total'] / 1000:.2f}", str(n["samples_out"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))),
              file=sys.stderr)
    p = metrics["pipeline"]
    print(f"pipeline: {p['wall_us'] / 1000:.2f} ms for {p['audio_seconds']:.2f} s of audio "
          f"(real-time factor {p['real_time_factor']:.5f})", file=sys.stderr)


def parse_caps(text: str) -> dict:
    """``FORMAT,CHANNELS,RATE`` (``i16,2,48000``; ``?`` or nothing for an unknown field)
    as an ``input`` caps object."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise InvalidInputError(f"--input-caps takes FORMAT,CHANNELS,RATE (e.g. i16,2,48000), got {text!r}")
    fmt, channels, rate = (None if p in ("", "?") else p for p in parts)
    try:
        return {"format": fmt, "channels": None if channels is None else int(channels),
                "sample_rate": None if rate is None else int(rate)}
    except ValueError:
        raise InvalidInputError(f"--input-caps: channels and rate are whole numbers, got {text!r}") from None


def cmd_plan(args) -> int:
    for path in args.plugin:
        plugins.load_plugin(path)
    pipeline = Pipeline.from_manifest(Path(args.manifest), runtime=args.runtime)
    caps = None
    if args.input:
        with audiofile.Reader(args.input) as r:
            caps = {"format": caps_mod.FORMAT_NAMES[r.dtype], "channels": r.channels, "sample_rate": r.sample_rate}
    elif args.input_caps:
        caps = parse_caps(args.input_caps)
    plan = pipeline.plan(caps)
    print(json.dumps(plan, indent=2, ensure_ascii=False) if args.json else plan_mod.to_dot(plan) if args.dot
          else plan_mod.to_table(plan))
    return 0


def cmd_nodes(args) -> int:
    rows = catalog.node_types(builtin_only=args.markdown)
    if args.name:
        rows = [r for r in rows if r["node_type"] == args.name]
        if not rows:
            known = ", ".join(r["node_type"] for r in catalog.node_types())
            raise InvalidInputError(f"no node type '{args.name}'; known: {known}")
    if args.markdown:
        print(catalog.markdown(rows))
    elif args.json:
        print(json.dumps(rows[0] if args.name else rows, indent=2))
    elif args.name:
        print(catalog.describe(rows[0]))
    else:
        for row in rows:
            origin = "" if row["origin"]["kind"] == "built-in" else f" from {catalog.origin_text(row['origin'])}"
            print(f"{row['node_type']:<16} [{'+'.join(row['runtimes'])}]{origin}  {row['description']}")
            params = ", ".join(catalog.param_summary(p) for p in row["params"])
            print(f"{'':<16} params: {params or '-'}")
    return 0


def cmd_plugins(args) -> int:
    listing = plugins.list_plugins()
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for p in listing["plugins"]:
        print(f"{p['name']} {p['version']} (ABI {p['abi']}, {p['license']})  {p['file']}")
        for t in p["node_types"]:
            print(f"    {t['node_type']:<16} {'/'.join(t['input_kinds'])} -> {'/'.join(t['output_kinds'])}  {t['description']}")
    for r in listing["rejected"]:
        print(f"rejected {r['file']}: {r['reason']}")
    if not listing["plugins"] and not listing["rejected"]:
        print("no plugins found")
    print("search path: " + ", ".join(f"{d['path']} ({d['source']})" for d in listing["search_path"]))
    return 0


def cmd_plugins_check(args) -> int:
    try:
        report = plugins.check_plugin(args.path, isolated=not args.in_process, timeout=args.timeout)
    except PluginError as e:
        if not args.json:
            raise
        print(json.dumps({"file": e.file, "passed": False, "error": str(e), "checks": []}, indent=2))
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            print(f"{'ok  ' if c['ok'] else 'FAIL'} {c['node_type'] or '-'}: {c['check']}" + ("" if c["ok"] else f": {c['detail']}"))
        print(f"{report.get('plugin', report['file'])}: {'passed' if report['passed'] else 'FAILED'}")
    return 0 if report["passed"] else 1


HELP = """Runs audio pipelines described by JSON manifests, on the native runtime when it
is installed and on the pure-Python one otherwise.

examples:
  remotemedia run examples/vad_pipeline.json -i talk.flac --segments talk.srt
  remotemedia run pipeline.json -i in.wav -o out.flac --events events.json --metrics m.json
  remotemedia batch examples/vad_pipeline.json corpus/ --out segmented/ --workers 4
  remotemedia plan pipeline.json --input-caps i16,2,48000   the converters it would insert
  remotemedia nodes                 every node type, with its params
  remotemedia nodes VAD             one node type in full (--json for machines)
  remotemedia plugins check ./libmyplugin.so
"""


def _streaming_options(parser: argparse.ArgumentParser, json_help: str, progress_help: str) -> None:
    """The options ``run`` and ``batch`` share."""
    parser.add_argument("--json", action="store_true", help=json_help)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=progress_help)
    parser.add_argument("--block-ms", type=float, default=files.DEFAULT_BLOCK_SECONDS * 1000,
                        help="milliseconds of audio pushed at a time (default: %(default)s)")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto", help="which runtime to use (default: auto)")


def _plugin_option(parser: argparse.ArgumentParser) -> None:
    """``--plugin LIB``, which ``run`` and ``plan`` share."""
    parser.add_argument("--plugin", action="append", default=[], metavar="LIB", help="load this plugin library first (repeatable)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="remotemedia", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"remotemedia {_contract.VERSION} ({_native_summary()})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="stream an audio file through a manifest's pipeline",
                         description="Streams an audio file through a pipeline in blocks (memory stays flat) and writes "
                                     "what you ask for. Progress and messages go to stderr; stdout carries only "
                                     "'--events -' or '--json'.")
    run.add_argument("manifest", help="the pipeline's JSON manifest")
    run.add_argument("--input", "-i", required=True, action="append", metavar="[NAME=]PATH",
                     help="input audio: WAV (any subtype), FLAC, OGG/Vorbis, Opus, MP3 (as the installed libsndfile has "
                          "them); for a pipeline with named inputs, NAME=PATH once per input")
    run.add_argument("--output", "-o", help="write the sinks' audio here (format from the extension; a second audio "
                                            "output goes to STEM.KEY.EXT)")
    run.add_argument("--events", metavar="PATH", help="write the sinks' JSON items here as {key: [items]} ('-': stdout)")
    run.add_argument("--segments", metavar="PATH", help="write speech segments here: .json, .csv, .srt or .rttm")
    run.add_argument("--split", metavar="DIR", help="write each speech segment's audio, cut from the input, to DIR")
    run.add_argument("--metrics", metavar="PATH", help="write per-node metrics JSON here and print a summary table")
    _streaming_options(run, json_help="print a JSON summary of the run on stdout",
                       progress_help="show a progress bar on stderr (default: when stderr is a terminal)")
    _plugin_option(run)
    run.set_defaults(fn=cmd_run)
    many = sub.add_parser("batch", help="run a manifest's pipeline once per file of a corpus",
                          description="Runs the pipeline on every input file (files, globs, directories, or .txt/.jsonl "
                                      "lists of paths) and writes per file, in OUT/files/, its segments and events "
                                      "(JSONL), metrics and record, each atomically, plus OUT/summary.json. A file that "
                                      "fails is recorded and does not stop the batch (exit status 1 if any failed).")
    many.add_argument("manifest", help="the pipeline's JSON manifest")
    many.add_argument("inputs", nargs="+", help="audio files, globs, directories, or .txt/.jsonl lists of paths")
    many.add_argument("--out", required=True, metavar="DIR", help="where the outputs go")
    many.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="a local process pool, or Ray Data (RAY_ADDRESS, else a local Ray; needs remotemedia[ray])")
    many.add_argument("--workers", type=int, default=None, help="worker processes or Ray actors (default: CPU count)")
    many.add_argument("--retries", type=int, default=0, help="tries again a failed file this many times")
    many.add_argument("--resume", action="store_true", help="skip files that an earlier run finished")
    many.add_argument("--split", action="store_true", help="also write each segment's audio to OUT/segments/ID/")
    _streaming_options(many, json_help="print the summary as JSON on stdout",
                       progress_help="a progress bar over the corpus on stderr (default: when stderr is a terminal)")
    many.set_defaults(fn=cmd_batch)
    plan = sub.add_parser("plan", help="show the caps plan: converters inserted, caps of every node and edge",
                          description="Negotiates the pipeline's caps and prints the plan: every node (those the "
                                      "negotiation inserted marked +) with its input and output caps, in the order "
                                      "data flows. Without --input or --input-caps, the input caps are the manifest's "
                                      "\"input\" (unknown fields show as ?).")
    plan.add_argument("manifest", help="the pipeline's JSON manifest")
    given = plan.add_mutually_exclusive_group()
    given.add_argument("--input", "-i", metavar="AUDIO", help="plan for this audio file's format, channels and rate")
    given.add_argument("--input-caps", metavar="FMT,CH,RATE", help="plan for these input caps, e.g. i16,2,48000")
    shown = plan.add_mutually_exclusive_group()
    shown.add_argument("--dot", action="store_true", help="as Graphviz dot, caps on the edges")
    shown.add_argument("--json", action="store_true", help="as JSON (the Pipeline.plan() dict)")
    plan.add_argument("--runtime", choices=RUNTIMES, default="auto", help="which runtime plans (default: %(default)s)")
    _plugin_option(plan)
    plan.set_defaults(fn=cmd_plan)
    nodes = sub.add_parser("nodes", help="list node types, or describe one",
                           description="Lists every node type (built-in, plugin, Python) with its params, or describes "
                                       "one in full: origin, runtimes, ports, every param with type, range, default "
                                       "and whether it is required.")
    nodes.add_argument("name", nargs="?", help="the node type to describe")
    nodes.add_argument("--json", action="store_true", help="as JSON (shaped as docs/nodes.schema.json)")
    nodes.add_argument("--markdown", action="store_true", help="the built-in node reference as Markdown (docs/NODES.md)")
    nodes.set_defaults(fn=cmd_nodes)
    plug = sub.add_parser("plugins", help="list discovered plugins, with versions, node types and rejections")
    plug.add_argument("--json", action="store_true", help="as JSON")
    plug.set_defaults(fn=cmd_plugins)
    plug_sub = plug.add_subparsers(dest="plugins_command", metavar="COMMAND")
    check = plug_sub.add_parser("check", help="run a plugin library through the conformance check")
    check.add_argument("path", help="the plugin library (.so)")
    check.add_argument("--json", action="store_true", help="the report as JSON")
    check.add_argument("--in-process", action="store_true", help="do not isolate the check in a child process")
    check.add_argument("--timeout", type=float, default=plugins.DEFAULT_CHECK_TIMEOUT_S, metavar="S",
                       help="seconds one node call may take before it counts as hung (default: %(default)s)")
    check.set_defaults(fn=cmd_plugins_check)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (RemoteMediaError, OSError) as e:
        print(f"remotemedia: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
