"""Retry with backoff and circuit breakers, on both runtimes, without wall-clock sleeps:
native tests use zero backoff and cooldowns, Python-runtime tests a fake clock."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import executor

AUDIO = rm.Audio(np.array([0.25, -0.5], np.float32), 16000)


def fault(runtime, fail_first, mode="transient", **policies):
    node = {"id": "f", "node_type": "Fault", "params": {"fail_first": fail_first, "mode": mode}, **policies}
    return rm.Pipeline.from_manifest({"version": "1", "nodes": [node]}, runtime=runtime)


@pytest.fixture
def fake_clock(monkeypatch):
    """The Python runtime's clock and sleep: sleeping advances the clock and is recorded."""
    state = {"now": 1000.0, "slept": []}
    monkeypatch.setattr(executor, "monotonic", lambda: state["now"])

    def sleep(seconds):
        state["slept"].append(round(seconds, 6))
        state["now"] += seconds
    monkeypatch.setattr(executor, "sleep", sleep)
    return state


def node_metrics(p):
    return p.metrics()["nodes"][0]


def test_transient_fault_is_retried_and_counted(runtime):
    p = fault(runtime, 2, retry={"base_ms": 0})
    out = p.run(AUDIO)["f"][0]
    np.testing.assert_array_equal(out.samples, AUDIO.samples)
    m = node_metrics(p)
    assert (m["retries"], m["errors"], m["breaker"]) == (2, 2, "closed")


def test_default_backoff_is_100_200_400_ms(fake_clock):
    p = fault("python", 3)
    p.run(AUDIO)
    assert fake_clock["slept"] == [0.1, 0.2, 0.4]
    p = fault("python", 9, retry={"max_retries": 4, "base_ms": 50, "factor": 3, "max_ms": 1000})
    with pytest.raises(rm.NodeError) as info:
        p.run(AUDIO)
    assert fake_clock["slept"][3:] == [0.05, 0.15, 0.45, 1.0]
    assert info.value.retryable and "injected fault 5 of 9" in str(info.value)


@pytest.mark.parametrize("mode", ["permanent", "panic"])
def test_permanent_faults_and_panics_are_not_retried(runtime, mode):
    p = fault(runtime, 1, mode)
    with pytest.raises(rm.NodeError) as info:
        p.run(AUDIO)
    assert not info.value.retryable and info.value.node_id == "f"
    assert node_metrics(p)["retries"] == 0


def test_breaker_opens_and_fails_fast(runtime):
    p = fault(runtime, 100, "permanent", circuit_breaker={"failures": 5, "cooldown_ms": 3600000})
    for _ in range(5):
        with pytest.raises(rm.NodeError) as info:
            p.run(AUDIO)
        assert not isinstance(info.value, rm.CircuitOpenError)
    with pytest.raises(rm.CircuitOpenError) as info:
        p.run(AUDIO)
    assert info.value.node_id == "f" and isinstance(info.value, rm.NodeError)
    m = node_metrics(p)
    assert m["breaker"] == "open" and m["calls"] == 5, "an open breaker does not call the node"


def test_breaker_half_opens_after_cooldown_and_closes(runtime, fake_clock):
    cooldown = 0 if runtime == "native" else 30000  # native: no fake clock, so no wait
    p = fault(runtime, 5, "permanent", circuit_breaker={"failures": 5, "cooldown_ms": cooldown})
    for _ in range(5):
        with pytest.raises(rm.NodeError):
            p.run(AUDIO)
    if runtime == "python":
        with pytest.raises(rm.CircuitOpenError):
            p.run(AUDIO)
        fake_clock["now"] += 30.0
    np.testing.assert_array_equal(p.run(AUDIO)["f"][0].samples, AUDIO.samples)  # the half-open trial succeeds
    assert node_metrics(p)["breaker"] == "closed"


def test_open_breaker_can_skip_the_node(runtime):
    p = fault(runtime, 100, "permanent", circuit_breaker={"failures": 1, "cooldown_ms": 3600000, "on_open": "skip"})
    with pytest.raises(rm.NodeError):
        p.run(AUDIO)
    np.testing.assert_array_equal(p.run(AUDIO)["f"][0].samples, AUDIO.samples)


def test_python_node_transient_error_is_retried_by_the_native_executor():
    class Flaky(rm.Node):
        node_type = "TestFlakyTwice"
        failures = 0

        def process(self, audio):
            if Flaky.failures < 2:
                Flaky.failures += 1
                raise rm.TransientError("not yet")
            return audio

    p = rm.Pipeline(runtime="native").add_node("g", "Gain").add_node("fl", Flaky, retry={"base_ms": 0})
    p.connect("g", "fl")
    assert p.node_runtimes()["fl"] == "python"
    np.testing.assert_array_equal(p.run(AUDIO)["fl"][0].samples, AUDIO.samples)
    assert {n["id"]: n["retries"] for n in p.metrics()["nodes"]}["fl"] == 2


@pytest.mark.parametrize("field, value, path", [
    ("retry", {"max_retries": 11}, "retry.max_retries"),
    ("retry", {"factor": 0.5}, "retry.factor"),
    ("retry", {"jitter": 1.5}, "retry.jitter"),
    ("retry", {"base_ms": 100, "max_ms": 10}, "retry.max_ms"),
    ("retry", {"max_retries": -1}, "retry.max_retries"),
    ("retry", {"tries": 3}, "retry.tries"),
    ("circuit_breaker", {"failures": 0}, "circuit_breaker.failures"),
    ("circuit_breaker", {"on_open": "ignore"}, "circuit_breaker.on_open"),
    ("circuit_breaker", {"cooldown_ms": 1.5}, "circuit_breaker.cooldown_ms"),
    ("timeout_ms", 0, "timeout_ms"),
    ("timeout_ms", "soon", "timeout_ms"),
])
def test_policy_validation_names_the_field(runtime, field, value, path):
    m = {"version": "1", "nodes": [{"id": "f", "node_type": "Fault", field: value}]}
    with pytest.raises(rm.ManifestError) as info:
        rm.Pipeline.from_manifest(m, runtime=runtime)
    assert info.value.path == f"nodes[0].{path}"


def test_policies_round_trip():
    p = rm.Pipeline().add_node("f", "Fault", retry={"max_retries": 1}, circuit_breaker={"on_open": "skip"})
    node = rm.Pipeline.from_manifest(p.to_manifest()).to_manifest()["nodes"][0]
    assert node["retry"]["max_retries"] == 1 and node["circuit_breaker"]["on_open"] == "skip"


def test_a_hanging_node_times_out_and_the_process_lives_on(runtime):
    # A real 50 ms deadline against a 1.5 s hang: the caller waits the deadline only.
    p = fault(runtime, 1, "hang", timeout_ms=50, retry={"max_retries": 0})
    m = p.to_manifest()
    m["nodes"][0]["params"]["hang_ms"] = 1500
    p = rm.Pipeline.from_manifest(m, runtime=runtime)
    import time
    started = time.perf_counter()
    with pytest.raises(rm.NodeTimeoutError) as info:
        p.run(AUDIO)
    assert time.perf_counter() - started < 1.0
    assert info.value.node_id == "f" and info.value.operation == "process" and info.value.retryable
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, rm.NodeError)
    # not poisoned: the node got a fresh instance (a Fault, whose first call hangs again)
    with pytest.raises(rm.NodeTimeoutError):
        p.run(AUDIO)
    assert node_metrics(p)["retries"] == 0


class Sleepy(rm.Node):
    """Passes audio through; hangs for 1.5 s on a chunk whose first sample is above 0.5."""

    node_type = "Sleepy"

    def process(self, data):
        if data.samples[0] > 0.5:
            import time
            time.sleep(1.5)
        return data


def test_a_pipeline_recovers_after_a_timeout(runtime):
    rm.register_node(Sleepy)
    p = rm.Pipeline(runtime=runtime).add_node("s", Sleepy, timeout_ms=100, retry={"max_retries": 0})
    with pytest.raises(rm.NodeTimeoutError):
        p.run(rm.Audio(np.ones(10, np.float32), 16000))
    ok = rm.Audio(np.zeros(10, np.float32), 16000)
    assert p.run(ok)["s"][0] == ok, "a fresh instance answers the next chunk"
    with p.stream() as s:
        with pytest.raises(rm.NodeTimeoutError):  # from push or from what follows, by runtime
            s.push(rm.Audio(np.ones(10, np.float32), 16000))
            s.flush()
            s.pull(timeout=5)
        s.push(ok)
        s.flush()
        assert [v for _, v in s.pull(timeout=5)] == [ok], "the stream goes on"


HUNG = textwrap.dedent("""
    import json, os, sys, threading, time
    import numpy as np, remotemedia as rm
    from remotemedia._contract import MAX_HUNG_CALLS

    def threads():
        return int(next(l for l in open("/proc/self/status") if l.startswith("Threads:")).split()[1])

    runtime, isolation = sys.argv[1], sys.argv[2]
    audio = rm.Audio(np.ones(8, np.float32), 16000)
    # a healthy pipeline of the same node type as the hanging ones
    healthy = rm.Pipeline(runtime=runtime).add_node("h", "Fault", fail_first=0, timeout_ms=2000)
    healthy.run(audio)
    before = threads()
    def outcome(p):
        try:
            p.run(audio)
            return "ok"
        except rm.NodeTimeoutError:
            return "timeout"
        except rm.NodeError as e:
            return "fail-fast" if "still running" in str(e) else str(e)

    outcomes = [outcome(rm.Pipeline(runtime=runtime).add_node("h", "Fault", fail_first=1, mode="hang", hang_ms=20000,
                                                              timeout_ms=10, retry={"max_retries": 0}, isolation=isolation))
                for _ in range(1000)]
    after = threads()
    healthy_s = []
    for _ in range(5):
        started = time.perf_counter()
        healthy.run(audio)
        healthy_s.append(time.perf_counter() - started)
    # one node that hangs on every call: its own calls are bounded, then fail at once
    own = rm.Pipeline(runtime=runtime).add_node("h", "Fault", fail_first=100, mode="hang", hang_ms=20000,
                                                 timeout_ms=10, retry={"max_retries": 0}, isolation=isolation,
                                                 circuit_breaker={"failures": 100})
    own_outcomes = [outcome(own) for _ in range(6 if isolation == "in_process" else 0)]
    print(json.dumps({"timeouts": outcomes.count("timeout"), "fail_fast": outcomes.count("fail-fast"),
                      "other": sorted(set(outcomes) - {"timeout", "fail-fast"}), "added_threads": after - before,
                      "healthy_s": max(healthy_s), "cap": MAX_HUNG_CALLS, "own": own_outcomes}))
    os._exit(0)  # the hung calls are still sleeping
""")


@pytest.mark.parametrize("isolation", ["in_process", "process"])
def test_hung_calls_cost_only_their_own_node(runtime, isolation):
    """1,000 hanging pipelines of one node type: each call times out (its own pipeline's
    error), and a healthy pipeline of that type neither fails nor waits. A node that
    hangs on every call holds at most MAX_HUNG_CALLS threads, then its timed calls fail
    at once. (The cap used to be per node type, process-wide: past 8 hung calls every
    pipeline of the type failed, healthy ones too.)"""
    out = subprocess.run([sys.executable, "-c", HUNG, runtime, isolation], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["other"] == [], r
    assert r["timeouts"] == 1000 and r["fail_fast"] == 0, r
    assert r["healthy_s"] < 1.0, r
    if isolation == "process":  # each hung child is killed: every call times out, no thread is held
        assert r["added_threads"] <= 8, r
    else:
        assert r["own"] == ["timeout"] * r["cap"] + ["fail-fast"] * (6 - r["cap"]), r
        assert r["added_threads"] <= 1000 + 8, f"1000 hung pipelines left {r['added_threads']} more threads"


def test_calls_within_their_deadline_work(runtime):
    p = fault(runtime, 0, timeout_ms=5000)
    np.testing.assert_array_equal(p.run(AUDIO)["f"][0].samples, AUDIO.samples)
    assert p.to_manifest()["nodes"][0]["timeout_ms"] == 5000


def test_native_log_records_reach_python_logging(caplog):
    p = fault("native", 2, retry={"base_ms": 0})
    with caplog.at_level("INFO", logger="remotemedia"):
        p.run(AUDIO)
    retries = [r for r in caplog.records if r.name == "remotemedia" and "retrying node call" in r.getMessage()]
    assert len(retries) == 2 and retries[0].levelname == "INFO"
    assert "node=f" in retries[0].getMessage() and "attempt=1" in retries[0].getMessage()
    p = fault("native", 100, "permanent", circuit_breaker={"failures": 1, "cooldown_ms": 60000})
    with caplog.at_level("INFO", logger="remotemedia"), pytest.raises(rm.NodeError):
        p.run(AUDIO)
    assert any(r.levelname == "WARNING" and "circuit breaker opened" in r.getMessage() for r in caplog.records)


def test_add_node_takes_every_policy_and_round_trips_them(runtime):
    policies = {"retry": {"max_retries": 1, "base_ms": 0}, "circuit_breaker": {"failures": 2}, "timeout_ms": 250}
    p = rm.Pipeline(runtime=runtime).add_node("f", "Fault", **policies)
    node = p.to_manifest()["nodes"][0]
    assert {k: node[k] for k in policies} == policies
    assert p.run(AUDIO)["f"][0] == AUDIO
    with pytest.raises(rm.ManifestError) as info:
        rm.Pipeline(runtime=runtime).add_node("f", "Fault", timeout_ms=0).run(AUDIO)
    assert info.value.path == "nodes[0].timeout_ms"


def test_caught_panics_reach_the_error_and_the_log_never_stderr():
    code = textwrap.dedent("""
        import logging, numpy as np, remotemedia as rm
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record.getMessage())
        logging.getLogger("remotemedia").addHandler(Keep())
        logging.getLogger("remotemedia").setLevel(logging.DEBUG)
        for runtime in ("native", "python"):
            p = rm.Pipeline(runtime=runtime).add_node("f", "Fault", mode="panic", fail_first=1)
            try:
                p.run(rm.Audio(np.zeros(4, np.float32), 16000))
            except rm.NodeError as e:
                print(runtime, "error:", e)
        print("logged:", [r for r in records if "caught panic" in r])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", "nothing on stderr"
    assert "native error: node 'f' failed in process: panicked: " in done.stdout
    assert "remotemedia::panic: caught panic: " in done.stdout and "fault.rs:" in done.stdout
