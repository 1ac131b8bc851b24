"""Command line: ``remotemedia run``, ``remotemedia nodes`` and ``remotemedia plugins``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import _contract, native, plugins, wav
from .audio import Audio
from .errors import RemoteMediaError
from .node import registered
from .pipeline import RUNTIMES, Pipeline


def _progress(message: str) -> None:
    print(f"[remotemedia] {message}", file=sys.stderr, flush=True)


def _native_summary() -> str:
    if native.available():
        return f"native library {native.library_version()}"
    return f"pure-Python runtime: {native.IMPORT_ERROR or 'native disabled by REMOTEMEDIA_DISABLE_NATIVE'}"


def _join(items: list) -> Audio:
    audio = [i for i in items if isinstance(i, Audio)]
    return Audio(np.concatenate([a.samples for a in audio]), audio[0].sample_rate)


def cmd_run(args) -> int:
    started = time.perf_counter()
    for path in args.plugin:
        loaded = plugins.load_plugin(path)
        _progress(f"loaded plugin {loaded['name']} {loaded['version']} from {loaded['file']}")
    pipeline = Pipeline.from_manifest(Path(args.manifest), runtime=args.runtime)
    _progress(f"pipeline '{args.manifest}' on the {pipeline.runtime} runtime: {pipeline.node_runtimes()}")
    audio = wav.read(args.input)
    _progress(f"read {args.input}: {audio.duration:.2f} s, {audio.channels} ch, {audio.sample_rate} Hz, "
              f"{audio.samples.dtype}")
    t0 = time.perf_counter()
    results = pipeline.run(audio)
    elapsed = time.perf_counter() - t0
    _progress(f"ran in {elapsed * 1e3:.2f} ms ({audio.duration / max(elapsed, 1e-9):.0f}x real time)")
    events = {}
    audio_keys = [k for k, items in results.items() if any(isinstance(i, Audio) for i in items)]
    for key, items in results.items():
        if key in audio_keys and args.output:
            out = Path(args.output)
            if len(audio_keys) > 1:
                out = out.with_name(f"{out.stem}.{key}{out.suffix}")
            result = _join(items)
            wav.write(out, result)
            _progress(f"wrote {out}: {result.duration:.2f} s from '{key}'")
        json_items = [i for i in items if not isinstance(i, Audio)]
        if json_items:
            events[key] = json_items
    if events:
        text = json.dumps(events, indent=2)
        if args.events:
            Path(args.events).write_text(text)
            _progress(f"wrote events to {args.events}")
        else:
            print(text)
    if args.metrics:
        metrics = pipeline.metrics()
        Path(args.metrics).write_text(json.dumps(metrics, indent=2))
        _progress(f"wrote metrics to {args.metrics}")
        print_metrics(metrics)
    _progress(f"done in {time.perf_counter() - started:.2f} s")
    return 0


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


def cmd_nodes(args) -> int:
    rows = {}
    for cls in registered().values():
        rows[cls.node_type] = {"node_type": cls.node_type, "runtimes": ["python"], "outputs": list(cls.outputs),
                               "params": cls.params_schema, "description": cls.description()}
    if native.available():
        for t in native.NativeRuntime.get().node_types():
            if t["runtime"] != "native":
                continue
            row = rows.setdefault(t["node_type"], {**t, "runtimes": []})
            row["runtimes"].insert(0, "native")
    if args.json:
        print(json.dumps(sorted(rows.values(), key=lambda r: r["node_type"]), indent=2))
        return 0
    for name in sorted(rows):
        row = rows[name]
        props = row["params"].get("properties", {})
        params = ", ".join(f"{k}: {v.get('type', '?')}" + (f" = {v['default']}" if "default" in v else "")
                           for k, v in props.items()) or "-"
        origin = f" from plugin {row['plugin']}" if "plugin" in row else ""
        print(f"{name:<16} [{'+'.join(row['runtimes'])}]{origin}  params: {params}")
        if row["description"]:
            print(f"{'':<16} {row['description']}")
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
    report = plugins.check_plugin(args.path, isolated=not args.in_process)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for c in report["checks"]:
            print(f"{'ok  ' if c['ok'] else 'FAIL'} {c['node_type'] or '-'}: {c['check']}" + ("" if c["ok"] else f": {c['detail']}"))
        print(f"{report.get('plugin', report['file'])}: {'passed' if report['passed'] else 'FAILED'}")
    return 0 if report["passed"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="remotemedia", description=__doc__)
    parser.add_argument("--version", action="version", version=f"remotemedia {_contract.VERSION} ({_native_summary()})")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a manifest on a WAV file")
    run.add_argument("manifest")
    run.add_argument("--input", "-i", required=True, help="input WAV (PCM 16/24/32-bit)")
    run.add_argument("--output", "-o", help="output WAV for the audio of the sink node(s)")
    run.add_argument("--events", help="write JSON events of the sinks here instead of stdout")
    run.add_argument("--runtime", choices=RUNTIMES, default="auto")
    run.add_argument("--metrics", help="write per-node metrics JSON here and print a summary table")
    run.add_argument("--plugin", action="append", default=[], help="load this plugin library first (repeatable)")
    run.set_defaults(fn=cmd_run)
    nodes = sub.add_parser("nodes", help="list node types with runtimes and params")
    nodes.add_argument("--json", action="store_true")
    nodes.set_defaults(fn=cmd_nodes)
    plug = sub.add_parser("plugins", help="list discovered plugins, with versions, node types and rejections")
    plug.add_argument("--json", action="store_true")
    plug.set_defaults(fn=cmd_plugins)
    plug_sub = plug.add_subparsers(dest="plugins_command")
    check = plug_sub.add_parser("check", help="run a plugin library through the conformance check")
    check.add_argument("path")
    check.add_argument("--json", action="store_true")
    check.add_argument("--in-process", action="store_true", help="do not isolate the check in a child process")
    check.set_defaults(fn=cmd_plugins_check)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (RemoteMediaError, OSError) as e:
        print(f"remotemedia: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
