"""Helpers shared by the tests."""

import importlib.util
import textwrap
from pathlib import Path

import remotemedia as rm


def one_node(runtime: str, node_id: str, node_type: str, params: dict, chunk: int | None = None) -> rm.Pipeline:
    """A pipeline of one node; with ``chunk``, a Rechunk (tail "emit") in front feeds it
    chunks of that many frames. On the native runtime, checks every node ran natively."""
    m = {"version": "1", "nodes": [{"id": node_id, "node_type": node_type, "params": params}]}
    if chunk:
        m["nodes"].insert(0, {"id": "c", "node_type": "Rechunk", "params": {"frame_samples": chunk, "tail": "emit"}})
        m["connections"] = [{"from": "c", "to": node_id}]
    p = rm.Pipeline.from_manifest(m, runtime=runtime)
    if runtime == "native":
        assert set(p.node_runtimes().values()) == {"native"}
    return p


def write_entry_point_package(root: Path) -> None:
    """Writes an installed-looking distribution into ``root`` (put it on sys.path) that
    exposes the node type ``AcmeHalve`` (halves float audio) through the entry-point
    group ``remotemedia.nodes``."""
    (root / "acme_nodes.py").write_text(textwrap.dedent('''
        import remotemedia as rm

        class Halve(rm.Node):
            """Halves float audio."""
            node_type = "AcmeHalve"

            def process(self, audio):
                return rm.Audio(audio.samples * audio.samples.dtype.type(0.5), audio.sample_rate)
    '''))
    dist = root / "acme_nodes-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-nodes\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[remotemedia.nodes]\nhalve = acme_nodes:Halve\n")


@rm.register_node
class Opaque(rm.Node):
    """Passes items on without declaring caps, so nothing is converted behind it: how a
    node's own input checks are reached."""

    node_type = "Opaque"

    def process(self, data):
        return data


def behind_opaque(runtime: str, node_id: str, node_type: str, params: dict) -> rm.Pipeline:
    """An Opaque node feeding one node of ``node_type``."""
    return (rm.Pipeline(runtime=runtime).add_node("o", Opaque).add_node(node_id, node_type, **params)
            .connect("o", node_id))


def pyannote_sample():
    """The two-party telephone call the pyannote.audio wheel ships, with its RTTM (found
    without importing the package, which needs torch)."""
    try:
        spec = importlib.util.find_spec("pyannote.audio")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        wav, rttm = Path(folder, "sample", "sample.wav"), Path(folder, "sample", "sample.rttm")
        if wav.is_file() and rttm.is_file():
            return wav, rttm
    return None
