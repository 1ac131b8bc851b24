"""Every node type this process can use, merged from the built-ins (contract.json), the
native runtime (plugins, host nodes) and registered Python classes: what
``remotemedia nodes`` shows and what docs/NODES.md is generated from."""

from __future__ import annotations

import json

from . import _contract, native, plugins
from .node import registered

#: The fields of a param that ``params`` lists, from its JSON Schema.
_PARAM_FIELDS = ("type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "default", "description")


def params_of(schema: dict) -> list[dict]:
    """A params JSON Schema as a list: name, each known field, and ``required``."""
    required = set(schema.get("required", ()))
    rows = []
    for name, spec in schema.get("properties", {}).items():
        row = {"name": name, **{k: spec[k] for k in _PARAM_FIELDS if k in spec}, "required": name in required}
        if "items" in spec:
            row["items"] = spec["items"]
        rows.append(row)
    return rows


def _row(node_type: str, description: str, outputs: list, schema: dict, runtimes: list, origin: dict,
         caps: dict | None) -> dict:
    return {"node_type": node_type, "description": description, "runtimes": runtimes, "origin": origin,
            "outputs": list(outputs), "params": params_of(schema), "params_schema": schema, "caps": caps}


def node_types(builtin_only: bool = False) -> list[dict]:
    """Every node type, sorted by name; each shaped as docs/nodes.schema.json says.
    ``builtin_only``: the built-in types alone (for the generated reference)."""
    rows = {n["node_type"]: _row(n["node_type"], n["description"], n["outputs"], n["params"],
                                 ["native"] if n["native_only"] else ["native", "python"], {"kind": "built-in"}, n["caps"])
            for n in _contract.NODES.values()}
    if builtin_only:
        return [rows[k] for k in sorted(rows)]
    if native.available():
        files = {p["name"]: p for p in plugins.list_plugins()["plugins"]}
        for t in native.NativeRuntime.get().node_types():
            if t["runtime"] != "native" or t["node_type"] in rows:
                continue
            origin = {"kind": "plugin", "plugin": t["plugin"]} if "plugin" in t else {"kind": "host"}
            if "plugin" in t and t["plugin"] in files:
                plugin = files[t["plugin"]]
                origin.update(file=plugin["file"], version=plugin["version"])
                kinds = next((k for k in plugin["node_types"] if k["node_type"] == t["node_type"]), {})
                origin.update({k: kinds[k] for k in ("input_kinds", "output_kinds") if k in kinds})
            rows[t["node_type"]] = _row(t["node_type"], t["description"], t["outputs"], t["params"], ["native"], origin,
                                        t.get("caps"))
    for cls in registered().values():
        row = rows.get(cls.node_type)
        if row is None:
            rows[cls.node_type] = _row(cls.node_type, cls.description(), cls.outputs, cls.params_schema, ["python"],
                                       {"kind": "python", "module": cls.__module__}, cls.caps)
        elif "python" not in row["runtimes"]:
            row["runtimes"].append("python")  # a Python twin of a plugin's node type
    return [rows[k] for k in sorted(rows)]


def _value(v) -> str:
    return json.dumps(v)


def param_summary(p: dict) -> str:
    """One param as text: ``name: type range = default`` (required ones marked ``*``)."""
    if "enum" in p:
        kind = " | ".join(_value(v) for v in p["enum"])
    else:
        kind = p.get("type", "any")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
    low = p.get("minimum", p.get("exclusiveMinimum"))
    high = p.get("maximum", p.get("exclusiveMaximum"))
    if low is not None or high is not None:
        left = "(" if "exclusiveMinimum" in p else "["
        right = ")" if "exclusiveMaximum" in p else "]"
        kind += f" {left}{'' if low is None else _value(low)}, {'' if high is None else _value(high)}{right}"
    default = f" = {_value(p['default'])}" if "default" in p else ""
    return f"{p['name']}{'*' if p['required'] else ''}: {kind}{default}"


def rule_text(rule) -> str:
    """A caps rule in words: ``f32``, ``8000|16000``, ``8000..=192000``, ``param target_rate``."""
    if isinstance(rule, list):
        return "|".join(str(v) for v in rule)
    if isinstance(rule, dict) and "param" in rule:
        if "cases" in rule:
            cases = "; ".join(f"{k}: {rule_text(r)}" for k, r in rule["cases"].items())
            return f"by {rule['param']} ({cases}; else {rule_text(rule.get('default', 'any'))})"
        if "set" in rule:
            return f"{rule_text(rule['set'])} with {rule['param']}, else {rule_text(rule.get('default', 'any'))}"
        what = f"length of param {rule['param']}" if rule.get("len") else f"param {rule['param']}"
        return what + (f", else {rule_text(rule['default'])}" if "default" in rule else "")
    if isinstance(rule, dict):
        return f"{rule.get('min')}..={rule.get('max')}"
    return str(rule)


def caps_lines(row: dict) -> list[tuple[str, str]]:
    """("takes" or a port, its rules in words) for a node type's caps declaration."""
    caps = row["caps"]
    if caps is None:
        return [("takes", "anything (undeclared)")]

    def side(rules: dict, absent: str) -> str:
        if rules.get("kind") == "json":
            return "JSON events"
        fields = {f: rules.get(f, absent) for f in ("kind", "format", "channels", "sample_rate")}
        shown = [f"{f.replace('sample_rate', 'rate')} {rule_text(r)}" for f, r in fields.items() if r != "input"]
        return ", ".join((["as its input"] if len(shown) < len(fields) else []) + shown)

    outs = caps.get("outputs", {})
    named = caps.get("inputs")
    takes = ([("takes", f"{port}: {side(rules, 'any')}") for port, rules in named.items()] if isinstance(named, dict)
             else [("takes", side(caps.get("input", {}), "any") + ("; all inputs alike" if caps.get("aligned") else ""))])
    return takes + [(port, side(outs.get(port, {}), "input")) for port in row["outputs"]]


def input_ports_text(row: dict) -> str:
    """A node type's input ports in words: their names, or how its params make them."""
    caps = row["caps"] or {}
    if isinstance(caps.get("inputs"), dict):
        return ", ".join(caps["inputs"])
    counted = caps.get("input_ports")
    if isinstance(counted, dict):
        prefix = counted.get("prefix", "in")
        return f"{prefix}0 … {prefix}{{N-1}}, one per element of param {counted.get('param')}"
    return "in"


def origin_text(o: dict) -> str:
    """Where a node type comes from, in words."""
    if o["kind"] == "plugin":
        return f"plugin {o['plugin']}" + (f" {o['version']} ({o['file']})" if "file" in o else "")
    if o["kind"] == "python":
        return f"Python class in {o['module']}"
    return {"built-in": "built-in", "host": "registered by the host"}[o["kind"]]


def describe(row: dict) -> str:
    """One node type as text, in the manner of gst-inspect."""
    lines = [row["node_type"], "", f"  {row['description'] or '(no description)'}", "",
             f"  Origin        {origin_text(row['origin'])}",
             f"  Runtimes      {', '.join(row['runtimes'])}"]
    o = row["origin"]
    if "input_kinds" in o:
        lines.append(f"  Input         {', '.join(o['input_kinds'])} items")
    lines.append(f"  Input ports   {input_ports_text(row)}")
    lines.append("  Output ports  " + ", ".join(f"{p}{' (default)' if i == 0 else ''}" for i, p in enumerate(row["outputs"])))
    lines += ["", "  Params" + ("  (* required)" if any(p["required"] for p in row["params"]) else "")]
    lines += [f"    {param_summary(p)}" + (f"\n        {p['description']}" if "description" in p else "")
              for p in row["params"]] or ["    none"]
    lines += ["", "  Caps"] + [f"    {who:<12}{what}" for who, what in caps_lines(row)]
    lines += ["", "  Latency       declared from its params and input caps (remotemedia plan); live per sink: metrics()"]
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    """The node reference (docs/NODES.md): one section per type."""
    out = ["# Node reference", "",
           "Generated from the node specs by `remotemedia nodes --markdown` (do not edit; a test checks it).", ""]
    for row in rows:
        out += [f"## {row['node_type']}", "", row["description"], "",
                f"- Runtimes: {', '.join(row['runtimes'])}",
                f"- Input ports: {input_ports_text(row)}",
                "- Output ports: " + ", ".join(f"`{p}`" + (" (default)" if i == 0 else "") for i, p in enumerate(row["outputs"])),
                *[f"- Caps, {'input takes' if who == 'takes' else f'`{who}` gives'}: {what}" for who, what in caps_lines(row)],
                ""]
        if row["params"]:
            out += ["| param | type and range | default | required |", "|---|---|---|---|"]
            for p in row["params"]:
                kind = param_summary({**p, "name": "", "required": False}).removeprefix(": ").split(" = ")[0]
                out.append(f"| `{p['name']}` | {kind.replace('|', '&#124;')} | "
                           f"{'`' + _value(p['default']) + '`' if 'default' in p else ''} | {'yes' if p['required'] else ''} |")
            out.append("")
    return "\n".join(out)
