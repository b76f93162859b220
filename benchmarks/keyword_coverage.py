"""Coverage per JSON Schema keyword, from a ``compile_peers.py --json`` run: for each keyword, the
schemas that use it, the share each engine compiled, and how often our refusal names it.

    python benchmarks/keyword_coverage.py RESULTS.json [--min 3]

A schema counts for a keyword when the keyword appears anywhere in it as a schema keyword (not as
a property name); a refusal names a keyword when our error says ``(keyword 'K'``. Prints the
Markdown table of ``docs/json_schema.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO.parent / "shared" / "data" / "maskbench-dev"
MAP_KEYS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")
ONE_KEYS = ("not", "if", "then", "else", "additionalProperties", "additionalItems", "contains",
            "propertyNames", "unevaluatedProperties", "unevaluatedItems")
LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")
REFUSED = re.compile(r"\(keyword '([^']+)'")


def keywords(schema, out: set[str] | None = None) -> set[str]:
    """Every schema keyword used anywhere in ``schema`` (property names excluded)."""
    out = set() if out is None else out
    if not isinstance(schema, dict):
        return out
    out.update(k for k in schema if isinstance(k, str))
    for k in MAP_KEYS:
        if isinstance(schema.get(k), dict):
            for sub in schema[k].values():
                keywords(sub, out)
    for k in ONE_KEYS:
        keywords(schema.get(k), out)
    for k in LIST_KEYS:
        if isinstance(schema.get(k), list):
            for sub in schema[k]:
                keywords(sub, out)
    items = schema.get("items")
    for sub in items if isinstance(items, list) else [items]:
        keywords(sub, out)
    deps = schema.get("dependencies")
    if isinstance(deps, dict):
        for sub in deps.values():
            keywords(sub, out)
    return out


def table(results: dict, schema_dir: Path, min_schemas: int) -> str:
    lines = []
    for vsize, block in results["vocabularies"].items():
        engines = block["engines"]
        outcome = {e: {r["file"]: r for r in engines[e]["records"]} for e in engines}
        files = sorted(next(iter(outcome.values())))
        used = defaultdict(list)
        for f in files:
            schema = json.loads((schema_dir / f).read_text())["schema"]
            for k in keywords(schema):
                used[k].append(f)
        named = Counter()
        for r in outcome.get("ours", {}).values():
            m = REFUSED.search(r.get("error") or "")
            if r["outcome"] != "compiled" and m:
                named[m.group(1)] += 1
        names = [e for e in ("ours", "llguidance", "outlines") if e in outcome]
        lines.append(f"{len(files)} schemas of `{schema_dir.name}`, vocabulary {vsize}, "
                     f"cap {results['how']['timeout_s']:g} s per schema "
                     f"(`{results['how']['command']}`, {results['how']['date'][:10]})\n")
        head = ["keyword", "schemas"] + [f"{e} compiled" for e in names] + ["our refusals naming it"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        rows = [(k, fs) for k, fs in used.items() if len(fs) >= min_schemas]
        for k, fs in sorted(rows, key=lambda kv: (-len(kv[1]), kv[0])):
            cells = [f"`{k}`", str(len(fs))]
            for e in names:
                ok = sum(outcome[e][f]["outcome"] == "compiled" for f in fs)
                cells.append(f"{ok} ({100 * ok / len(fs):.0f}%)")
            cells.append(str(named.get(k, 0)))
            lines.append("| " + " | ".join(cells) + " |")
        total = ["**all**", str(len(files))]
        for e in names:
            ok = sum(r["outcome"] == "compiled" for r in outcome[e].values())
            total.append(f"{ok} ({100 * ok / len(files):.0f}%)")
        lines.append("| " + " | ".join(total + [str(sum(named.values()))]) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="JSON written by compile_peers.py --json")
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="the schemas' folder")
    p.add_argument("--min", type=int, default=3, help="list keywords used by at least this many")
    a = p.parse_args(argv)
    out = table(json.loads(Path(a.results).read_text()), Path(a.dir), a.min)
    print(out)
    return out


if __name__ == "__main__":
    sys.exit(main() and 0)
