"""Process isolation (``"isolation": "process"``): a node that segfaults, aborts, writes
out of bounds or hangs fails its own call while this process and the other nodes carry
on; later chunks flow; both runtimes agree; isolated nodes compute what in-process ones
do; the manifest field round-trips and is checked."""

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm

AUDIO = rm.Audio(np.array([0.25, -0.5], np.float32), 16000)
EMPTY = rm.Audio(np.zeros(0, np.float32), 16000)


def fault(runtime, mode, **policies):
    node = {"id": "f", "node_type": "Fault", "params": {"fail_first": 1, "mode": mode}, "isolation": "process",
            "retry": {"max_retries": 0}, **policies}
    return rm.Pipeline.from_manifest({"version": "1", "nodes": [node]}, runtime=runtime)


def failure(p, audio=AUDIO):
    with pytest.raises(rm.NodeError) as e:
        p.run(audio)
    return e.value


@pytest.mark.parametrize("mode, signal", [("segfault", "SIGSEGV"), ("abort", "SIGABRT")])
def test_a_crash_is_a_node_error_and_the_next_call_gets_a_new_process(runtime, mode, signal):
    p = fault(runtime, mode)
    for _ in range(2):  # each new process crashes on its first call again
        e = failure(p)
        assert e.node_id == "f" and e.operation == "process" and e.retryable
        assert str(e) == f"node 'f' failed in process: its process died: killed by signal " \
                         f"{ {'SIGSEGV': 11, 'SIGABRT': 6}[signal]} ({signal}); it is restarted on the next call"
    assert p.metrics()["nodes"][0]["errors"] == 2


def node_hosts() -> list[int]:
    """This process's remotemedia-node-host children (zombies too: one not reaped counts)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 1:].split()
        if comm.startswith("remotemedia-nod") and int(rest[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


def test_a_hang_past_the_timeout_kills_the_process(runtime):
    p = fault(runtime, "hang", timeout_ms=100)
    assert len(node_hosts()) == (1 if runtime == "native" else 0)
    assert len(multiprocessing.active_children()) == (1 if runtime == "python" else 0)
    e = failure(p)
    assert isinstance(e, rm.NodeTimeoutError) and str(e) == "node 'f' timed out in process after 100 ms"
    assert node_hosts() == [] and multiprocessing.active_children() == [], "killed and reaped; the next call starts one"


def test_retries_restart_the_process_and_count(runtime):
    p = fault(runtime, "segfault", retry={"max_retries": 2, "base_ms": 0})
    failure(p)
    m = p.metrics()["nodes"][0]
    assert (m["retries"], m["errors"], m["calls"]) == (2, 3, 3), m  # 3 tries, each crashed in a new process


def test_process_ending_modes_are_refused_in_process(runtime):
    for mode in ("abort", "segfault"):
        with pytest.raises(rm.ManifestError) as e:
            rm.Pipeline(runtime=runtime).add_node("f", "Fault", mode=mode).run(AUDIO)
        assert e.value.path == "nodes[0].params.mode"


def test_the_isolation_field_round_trips_and_is_checked(runtime):
    p = rm.Pipeline(runtime=runtime).add_node("g", "Gain", gain_db=6.0, isolation="process")
    assert p.to_manifest()["nodes"][0]["isolation"] == "process"
    assert rm.Pipeline.from_manifest(p.to_manifest(), runtime=runtime).to_manifest() == p.to_manifest()
    bad = {"version": "1", "nodes": [{"id": "g", "node_type": "Gain", "isolation": "elsewhere"}]}
    with pytest.raises(rm.ManifestError) as e:
        rm.Pipeline.from_manifest(bad, runtime=runtime)
    assert e.value.path == "nodes[0].isolation"
    with pytest.raises(rm.ManifestError) as e:  # params are checked by the node, in its process
        rm.Pipeline(runtime=runtime).add_node("g", "Gain", gain_db="loud", isolation="process").run(AUDIO)
    assert e.value.path == "nodes[0].params.gain_db"


def chain(runtime, isolation):
    nodes = [{"id": "f32", "node_type": "FormatConverter", "params": {"format": "f32"}},
             {"id": "mono", "node_type": "Downmix"},
             {"id": "rs", "node_type": "Resample", "params": {"target_rate": 16000}},
             {"id": "vad", "node_type": "VAD", "params": {"frame_ms": 30}}]
    for n in nodes:
        n["isolation"] = isolation
    connections = [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:])]
    return rm.Pipeline.from_manifest({"version": "1", "nodes": nodes, "connections": connections}, runtime=runtime)


def test_isolated_nodes_compute_what_in_process_nodes_do_in_a_stream(runtime):
    rng = np.random.default_rng(7)
    chunks = [(rng.standard_normal((960, 2)) * 8000 * (k % 3 != 0)).astype(np.int16) for k in range(12)]
    outs = {}
    for isolation in ("in_process", "process"):
        with chain(runtime, isolation).stream() as s:
            for c in chunks:
                s.push(rm.Audio(c, 48000))
            s.flush()
            outs[isolation] = s.pull(timeout=10)
    a, b = outs["in_process"], outs["process"]
    assert [k for k, _ in a] == [k for k, _ in b] and len(a) > 0
    for (_, x), (_, y) in zip(a, b):
        if isinstance(x, rm.Audio):
            np.testing.assert_array_equal(x.samples, y.samples)
        else:
            assert x == y


class Doubler(rm.Node):
    node_type = "TestIsolatedDoubler"

    def process(self, data):
        return rm.Audio(data.samples * 2, data.sample_rate)


def test_python_nodes_are_isolated_by_the_python_runtime_and_refused_by_the_native_one():
    rm.register_node(Doubler)
    p = rm.Pipeline(runtime="python").add_node("d", Doubler, isolation="process")
    np.testing.assert_array_equal(p.run(AUDIO)["d"][0].samples, AUDIO.samples * 2)
    if rm.native_available():
        with pytest.raises(rm.ManifestError) as e:
            rm.Pipeline(runtime="native").add_node("d", Doubler, isolation="process").run(AUDIO)
        assert e.value.path == "nodes[0].isolation" and "Python node" in str(e.value)


native = pytest.mark.skipif(not rm.native_available(), reason="plugins need the native library")


@native
@pytest.mark.parametrize("flag, how", [("CRASH_ON_EMPTY", "SIGSEGV"), ("ABORT_ON_EMPTY", "SIGABRT"),
                                       ("OOB_ON_EMPTY", "SIGSEGV"), ("HANG_ON_EMPTY", "timed out")])
def test_a_misbehaving_c_plugin_fails_its_chunk_and_later_chunks_flow(broken, flag, how):
    lib = broken(flag)
    node_type = rm.load_plugin(lib)["node_types"][0]["node_type"]
    p = (rm.Pipeline(runtime="native")
         .add_node("g", "Gain", gain_db=0.0)
         .add_node("x", node_type, isolation="process", timeout_ms=300, retry={"max_retries": 0})
         .connect("g", "x"))
    assert p.run(AUDIO)["x"][0] == AUDIO
    e = failure(p, EMPTY)
    assert e.node_id == "x" and how in str(e), str(e)
    assert isinstance(e, rm.NodeTimeoutError) == (how == "timed out")
    assert p.run(AUDIO)["x"][0] == AUDIO, "the next chunk flows through a new process"
    with p.stream() as s:  # in a stream: the failed chunk is reported, later chunks flow
        s.push(AUDIO)
        with pytest.raises(rm.NodeError):
            s.push(EMPTY)
            s.pull(timeout=5)
        s.push(AUDIO)
        s.flush()
        assert AUDIO in [v for _, v in s.pull(timeout=5)]


def test_isolated_processes_are_bounded_per_process(runtime):
    from remotemedia._contract import MAX_NODE_PROCESSES
    p = rm.Pipeline(runtime=runtime)
    for i in range(MAX_NODE_PROCESSES + 1):
        p.add_node(f"n{i}", "PassThrough", isolation="process")
    with pytest.raises(rm.NodeError, match="the most at once"):
        p.run(AUDIO)
    one = rm.Pipeline(runtime=runtime).add_node("a", "PassThrough", isolation="process")
    assert one.run(AUDIO)["a"][0] == AUDIO, "the refused pipeline's processes are gone with it"
