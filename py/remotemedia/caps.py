"""Caps: what a port carries (kind, sample format, channel count, sample rate), the
rules a node type declares its ports with, and their evaluation against its params.

The twin of native/src/caps.rs (its module docs give the declaration vocabulary); a
declaration is the ``caps`` of a node type in the contract, or a Python node class's
``caps`` attribute. Caps are a 4-tuple (kind, format, channels, sample_rate) with
``None`` for what is not known before data flows.
"""

from __future__ import annotations

import json

from ._contract import SAMPLE_FORMATS
from .audio import FORMAT_OF, Audio

FIELDS = ("kind", "format", "channels", "sample_rate")
UNKNOWN: tuple = (None, None, None, None)
ANY, INPUT = ("any",), ("input",)
#: Deepest nesting of param rules, and the largest declaration, as native/src/caps.rs.
MAX_RULE_DEPTH = 4
MAX_DECL_BYTES = 16 << 10
#: The input port of a node that declares none, and the most input ports a node may have.
DEFAULT_INPUT = "in"
MAX_INPUT_PORTS = 64
_FORMAT_NAMES = {code: name for name, code in SAMPLE_FORMATS.items()}
#: Format names in the order of their C values (native ``SampleFormat::ALL``).
_FORMATS = sorted(SAMPLE_FORMATS, key=SAMPLE_FORMATS.get)


def audio(fmt=None, channels=None, rate=None) -> tuple:
    """Audio caps with the fields that are known."""
    return ("audio", fmt, channels, rate)


def of(item) -> tuple:
    """The caps of a data item."""
    if isinstance(item, Audio):
        return audio(format_name(item), item.channels, item.sample_rate)
    return ("json", None, None, None)


#: The format name (``f32`` …) of each supported numpy dtype.
FORMAT_NAMES = {dtype: _FORMAT_NAMES[code] for dtype, code in FORMAT_OF.items()}


def format_name(a: Audio) -> str:
    """``f32``, ``i16``, … for the samples' dtype."""
    return FORMAT_NAMES[a.samples.dtype]


def from_json(value) -> tuple:
    """``{"format", "channels", "sample_rate"}`` (each optional) as audio caps; raises
    ValueError(field, message) as native ``Caps::from_json``."""
    if not isinstance(value, dict):
        raise ValueError("", "expected an object with format, channels and sample_rate")
    caps = list(audio())
    for key, v in value.items():
        if key not in FIELDS[1:]:
            raise ValueError(key, f"unknown field `{key}`, expected one of format, channels, sample_rate")
        if v is not None:
            field = FIELDS.index(key)
            message = check_value(field, v)
            if message:
                raise ValueError(key, message)
            caps[field] = v
    return tuple(caps)


def to_json(caps: tuple) -> dict:
    """``{"kind", "format", "channels", "sample_rate"}`` (``{"kind": "json"}`` for JSON)."""
    if caps[0] == "json":
        return {"kind": "json"}
    return dict(zip(FIELDS, caps))


def _json(v) -> str:
    """Compact JSON text, as serde_json writes it."""
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _show(v) -> str:
    return v if isinstance(v, str) else _json(v)


def describe(caps: tuple) -> str:
    """For messages: ``i16, 2 ch, 48000 Hz``, ``JSON events``, ``?`` for an unknown field."""
    if caps[0] == "json":
        return "JSON events"
    if caps[0] is None and all(v is None for v in caps):
        return "unknown caps"
    return ", ".join(("?" if v is None else _show(v)) + unit for v, unit in zip(caps[1:], ("", " ch", " Hz")))


# ---- rules --------------------------------------------------------------------------

def accepts(rule: tuple, v) -> bool:
    """Whether a port carrying ``v`` (unknown: None) may feed ``rule``; unknown passes."""
    if v is None or rule[0] in ("any", "input"):
        return True
    if rule[0] == "one":
        return rule[1] == v
    if rule[0] == "list":
        return v in rule[1]
    return _u64(v) and rule[1] <= v <= rule[2]


def _u64(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def prefer(rule: tuple, v):
    """The value to convert ``v`` to: ``v`` when accepted, else the preferred one."""
    if accepts(rule, v) or rule[0] in ("any", "input"):
        return v
    if rule[0] == "one":
        return rule[1]
    if rule[0] == "list":
        return rule[1][0]
    return min(max(v if _u64(v) else rule[1], rule[1]), rule[2])


def _produce(rule: tuple, v):
    return v if rule[0] == "input" else rule[1] if rule[0] == "one" else None


def describe_rule(rule: tuple) -> str:
    if rule[0] == "one":
        return _show(rule[1])
    if rule[0] == "list":
        return "|".join(_show(x) for x in rule[1])
    if rule[0] == "range":
        return f"{rule[1]}..={rule[2]}"
    return "any"


def resolve(rule, field: int, params: dict, schema: dict, absent: tuple) -> tuple:
    """``rule`` of field ``field`` read against ``params`` (see native/src/caps.rs);
    ``absent`` when None. A param value that is no value of the field reads as "any"."""
    if rule is None:
        return absent
    if rule == "any":
        return ANY
    if rule == "input":
        return INPUT
    if isinstance(rule, list):
        return ("list", list(rule))
    if isinstance(rule, dict) and "param" in rule:
        name = rule["param"] if isinstance(rule["param"], str) else ""
        prop = (schema.get("properties") or {}).get(name) if isinstance(schema, dict) else None
        default = prop.get("default") if isinstance(prop, dict) else None
        value = params.get(name)
        if value is None:
            value = default

        def fallback():
            return resolve(rule.get("default"), field, params, schema, ANY)

        if value is None:
            return fallback()
        if "cases" in rule:
            key = value if isinstance(value, str) else _json(value)
            case = rule["cases"].get(key) if isinstance(rule["cases"], dict) else None
            return fallback() if case is None else resolve(case, field, params, schema, ANY)
        if "set" in rule:
            return resolve(rule["set"], field, params, schema, ANY)
        if rule.get("len") is True:
            value = len(value) if isinstance(value, list) else 0
        return ANY if check_value(field, value) else ("one", value)
    if isinstance(rule, dict):
        lo, hi = rule.get("min"), rule.get("max")
        return ("range", lo if _u64(lo) else 0, hi if _u64(hi) else 2**64 - 1)
    return ("one", rule)


class Ports:
    """A node's port rules read against its params: its input ports (``inputs``, names in
    order), what each accepts (``accept``, 4 rules each), whether they are ``aligned``,
    and per output port ``produce`` (4 rules each)."""

    __slots__ = ("inputs", "accept", "aligned", "outputs", "produce")

    def __init__(self, decl: dict | None, outputs, params: dict, schema: dict):
        if decl is not None and not isinstance(decl, dict):
            decl = {}
        if decl is None:
            self.inputs, self.accept, self.aligned = [DEFAULT_INPUT], [(ANY,) * 4], False
            self.outputs, self.produce = list(outputs), [(ANY,) * 4 for _ in outputs]
            return

        def read(side, absent):
            return tuple(resolve(side.get(f) if isinstance(side, dict) else None, i, params, schema, absent)
                         for i, f in enumerate(FIELDS))

        named, counted = decl.get("inputs"), decl.get("input_ports")
        if isinstance(named, dict):
            self.inputs = list(named)
            self.accept = [read(side, ANY) for side in named.values()]
        elif counted is not None:
            counted = counted if isinstance(counted, dict) else {}
            prefix = counted.get("prefix") if isinstance(counted.get("prefix"), str) else DEFAULT_INPUT
            name = counted.get("param") if isinstance(counted.get("param"), str) else ""
            prop = (schema.get("properties") or {}).get(name) if isinstance(schema, dict) else None
            value = params.get(name)
            if value is None and isinstance(prop, dict):
                value = prop.get("default")
            n = min(len(value) if isinstance(value, list) else 0, MAX_INPUT_PORTS)
            self.inputs = [f"{prefix}{i}" for i in range(n)]
            self.accept = [read(decl.get("input"), ANY)] * n
        else:
            self.inputs, self.accept = [DEFAULT_INPUT], [read(decl.get("input"), ANY)]
        self.aligned = decl.get("aligned") is True
        outs = decl.get("outputs") if isinstance(decl.get("outputs"), dict) else {}
        self.outputs = output_names(decl, outputs, params)
        # dynamic ports produce as the class's first port
        same = self.outputs == list(outputs)
        self.produce = [read(outs.get(p if same else (outputs[0] if outputs else "")), INPUT) for p in self.outputs]

    def input_index(self, name: str) -> int | None:
        return self.inputs.index(name) if name in self.inputs else None

    def accepts(self, port: int, caps: tuple) -> bool:
        return all(accepts(rule, v) for rule, v in zip(self.accept[port], caps))

    def output(self, port: int, caps: tuple) -> tuple:
        out = tuple(_produce(rule, v) for rule, v in zip(self.produce[port], caps))
        return ("json", None, None, None) if out[0] == "json" else out

    def describe_accept(self, port: int) -> str:
        accept = self.accept[port]
        if accept[0] == ("one", "json"):
            return "JSON events"
        if all(r == ANY for r in accept):
            return "anything"
        rules = [describe_rule(r) for r in accept[1:]]
        return f"{rules[0]}, {rules[1]} ch, {rules[2]} Hz"


def output_names(decl, outputs, params: dict) -> list[str]:
    """The output port names of a node with ``params``: those param ``output_ports.param``
    lists (when it lists names), else the class's ``outputs`` (native: ``output_names``)."""
    named = decl.get("output_ports") if isinstance(decl, dict) else None
    value = params.get(named.get("param")) if isinstance(named, dict) and isinstance(named.get("param"), str) else None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return list(outputs)


def ports(cls, params: dict) -> Ports:
    """The port rules of a node of Python class ``cls`` with ``params``."""
    return Ports(getattr(cls, "caps", None), cls.outputs, params, cls.params_schema)


# ---- declarations ---------------------------------------------------------------------

def check_decl(decl, outputs) -> str | None:
    """Why the declaration ``decl`` is malformed (as native ``check_decl``), or None."""
    size = len(_json(decl).encode())
    if size > MAX_DECL_BYTES:
        return f"caps declaration is {size} bytes, more than {MAX_DECL_BYTES}"
    if not isinstance(decl, dict):
        return "caps: expected an object with input and outputs"
    if "inputs" in decl and "input_ports" in decl:
        return "caps: give inputs or input_ports, not both"
    for key, side in decl.items():
        if key == "input":
            why = _check_side(side, True)
            if why:
                return f"caps.input{why}"
        elif key == "inputs":
            if not isinstance(side, dict):
                return "caps.inputs: expected an object keyed by input port"
            if not 1 <= len(side) <= MAX_INPUT_PORTS:
                return f"caps.inputs: a node has 1 to {MAX_INPUT_PORTS} input ports"
            for port, accept in side.items():
                why = check_port_name(port)
                if why:
                    return f"caps.inputs.{port}: {why}"
                why = _check_side(accept, True)
                if why:
                    return f"caps.inputs.{port}{why}"
        elif key == "input_ports":
            if not (isinstance(side, dict) and len(side) == 2 and isinstance(side.get("param"), str)
                    and isinstance(side.get("prefix"), str)):
                return 'caps.input_ports: expected {"param": P, "prefix": S}'
            why = check_port_name(f"{side['prefix']}0")
            if why:
                return f"caps.input_ports.prefix: {why}"
        elif key == "output_ports":
            if not (isinstance(side, dict) and len(side) == 1 and isinstance(side.get("param"), str)):
                return 'caps.output_ports: expected {"param": P}'
        elif key == "aligned":
            if not isinstance(side, bool):
                return "caps.aligned: expected true or false"
        elif key == "outputs":
            if not isinstance(side, dict):
                return "caps.outputs: expected an object keyed by output port"
            for port, produce in side.items():
                if port not in outputs:
                    return f"caps.outputs.{port}: no output port '{port}'; ports: {', '.join(outputs)}"
                why = _check_side(produce, False)
                if why:
                    return f"caps.outputs.{port}{why}"
        else:
            return f"caps.{key}: unknown field, expected input, inputs, input_ports, aligned, outputs or output_ports"
    return None


def check_port_name(name: str) -> str | None:
    """Why ``name`` is no port name (empty, or holding the ``.`` between node and port)."""
    if not name or "." in name:
        return f"port name '{name}' must be non-empty and hold no '.'"
    return None


def _check_side(side, accept: bool) -> str | None:
    if not isinstance(side, dict):
        return ": expected an object of kind, format, channels, sample_rate"
    for key, rule in side.items():
        if key not in FIELDS:
            return f".{key}: unknown field, expected one of {', '.join(FIELDS)}"
        why = _check_rule(rule, FIELDS.index(key), accept, 0)
        if why:
            return f".{key}: {why}"
    return None


def _check_rule(rule, field: int, accept: bool, depth: int) -> str | None:
    if depth > MAX_RULE_DEPTH:
        return f"param rules nest deeper than {MAX_RULE_DEPTH}"
    if rule == "any":
        return None
    if rule == "input":
        return '"input" is for outputs' if accept else None
    if isinstance(rule, list) and accept:
        if not rule:
            return "an empty list accepts nothing"
        return next((m for m in (check_value(field, x) for x in rule) if m), None)
    if isinstance(rule, dict) and "param" in rule:
        if not isinstance(rule["param"], str):
            return "param: expected a param name"
        for key, sub in rule.items():
            if key == "param" or (key == "len" and isinstance(sub, bool)):
                continue
            if key in ("set", "default"):
                why = _check_rule(sub, field, accept, depth + 1)
            elif key == "cases":
                if not isinstance(sub, dict):
                    return "cases: expected an object"
                why = next((m for m in (_check_rule(r, field, accept, depth + 1) for r in sub.values()) if m), None)
            else:
                return f"unknown key '{key}' in a param rule"
            if why:
                return why
        return None
    if isinstance(rule, dict) and accept and field >= 2:
        lo, hi = rule.get("min"), rule.get("max")
        if _u64(lo) and _u64(hi) and len(rule) == 2 and lo <= hi:
            return None
        return 'a range is {"min": a, "max": b} with whole numbers a <= b'
    return check_value(field, rule)


def check_value(field: int, v) -> str | None:
    """Why ``v`` is not a value of field ``field``, or None."""
    name = FIELDS[field]
    if name == "kind":
        ok, domain = v in ("audio", "json") and isinstance(v, str), '"audio" or "json"'
    elif name == "format":
        ok, domain = isinstance(v, str) and v in SAMPLE_FORMATS, ", ".join(f'"{f}"' for f in _FORMATS)
    elif name == "channels":
        ok, domain = _u64(v) and 1 <= v <= 65535, "a whole number from 1 to 65535"
    else:
        ok, domain = _u64(v) and 1 <= v <= 2**32 - 1, f"a whole number of Hz from 1 to {2**32 - 1}"
    return None if ok else f"{_json(v)} is not a valid {name}; expected {domain}"
