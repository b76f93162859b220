"""Training data: windows of Python standard library source, split train / held out by module."""

from __future__ import annotations

import hashlib
import os
import random
import sysconfig
from typing import Iterator

_SKIP_DIRS = ("test/", "tests/", "idlelib/test", "lib2to3/tests", "site-packages/", "__pycache__/")


def stdlib_files(split: str = "train") -> list[str]:
    """Paths of stdlib .py files; ~5% of modules (by hash of relative path) are held out."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    root = sysconfig.get_paths()["stdlib"]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/") + "/"
        if any(s in rel_dir or rel_dir.startswith(s) for s in _SKIP_DIRS) or rel_dir.startswith("test/"):
            dirnames[:] = []
            continue
        for f in sorted(filenames):
            if not f.endswith(".py"):
                continue
            rel = (rel_dir + f).lstrip("./") if rel_dir != "./" else f
            h = int(hashlib.sha1(rel.encode()).hexdigest()[:8], 16) % 100
            if (h < 5) == (split == "heldout"):
                out.append(os.path.join(dirpath, f))
    return out


def read_source(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def code_windows(files: list[str], n: int, seed: int, max_lines: int = 40) -> Iterator[tuple[str, str, str]]:
    """``n`` windows of source as (prefix, span, suffix): ``span`` is 1-3 whole lines inside the
    window (where the training loop may insert a hole's slack of pads)."""
    rng = random.Random(f"code/{seed}")
    texts = {}
    count = 0
    while count < n:
        path = rng.choice(files)
        if path not in texts:
            texts[path] = read_source(path).splitlines(keepends=True)
        lines = texts[path]
        if len(lines) < 4:
            continue
        a = rng.randrange(len(lines))
        w = lines[a:a + rng.randint(6, max_lines)]
        if len(w) < 3 or not "".join(w).strip():
            continue
        i = rng.randrange(len(w))
        j = min(len(w), i + rng.randint(1, 3))
        yield "".join(w[:i]), "".join(w[i:j]), "".join(w[j:])
        count += 1
