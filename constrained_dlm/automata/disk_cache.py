"""Compile stage: compiled token automata kept on disk, so a slow compile is paid once per machine.

A Python infilling hole compiles to a ~14k-state automaton in about 30 s on a laptop CPU; an
editor, a server restart or a batch worker would pay that again every time. Automata that took
longer than :data:`MIN_BUILD_S` to build are written here and loaded back (milliseconds).

Where: ``$CDLM_CACHE_DIR`` if set (``off`` / ``0`` / empty turns the cache off), else
``$XDG_CACHE_HOME/constrained-dlm/automata`` (``~/.cache/...``). Files are ``.npz`` arrays only
(loaded with ``allow_pickle=False``: a cache file is data, never code), named by a hash of the
key and checked against the full key on load (which includes a hash of the compiler's own
source, so an upgrade never reads stale automata); a file that does not load or does not match is
ignored and rebuilt. Writes go to a temporary file that is renamed into place, so concurrent
workers sharing one folder never see half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = 1
MIN_BUILD_S = 0.5
"""Automata that compile faster than this are not worth a file."""

_ARRAYS = ("trans", "accepting", "token_class", "class_size", "class_rep")


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off."""
    env = os.environ.get("CDLM_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "constrained-dlm" / "automata"


_CODE_VERSION: str | None = None


def code_version() -> str:
    """A hash of every source file of the package (paths and contents, Python and C): a changed
    compiler never reads automata an older one wrote, whatever was renamed or moved. (Hashing
    chosen folders by name would silently miss a compiler file that moved elsewhere.)"""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]
        files = [f for pattern in ("*.py", "*.c", "*.h") for f in root.rglob(pattern)]
        for f in sorted(files):             # the C loops build automata too
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
        _CODE_VERSION = h.hexdigest()[:16]
    return _CODE_VERSION


def _key_text(key) -> str:
    return json.dumps([FORMAT, code_version(), repr(key)])


def _path(folder: Path, key_text: str) -> Path:
    return folder / (hashlib.sha256(key_text.encode()).hexdigest()[:40] + ".npz")


def load(key) -> dict | None:
    """The cached automaton for ``key`` (a repr-able tuple) as the keyword arguments of
    ``TokenAutomaton`` (arrays and scalars; this module knows no automaton class), or None."""
    folder = cache_dir()
    if folder is None:
        return None
    text = _key_text(key)
    path = _path(folder, text)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("key") != text:
                return None
            arrays = {k: z[k].copy() for k in _ARRAYS}
    except Exception:                      # a corrupt or foreign file: rebuild
        return None
    return dict(initial=int(meta["initial"]), regex=meta["regex"],
                min_tokens=int(meta["min_tokens"]), max_tokens=meta["max_tokens"], **arrays)


def store(key, auto) -> Path | None:
    """Write ``auto`` under ``key``; failures (read-only disk, full disk) are ignored."""
    folder = cache_dir()
    if folder is None:
        return None
    text = _key_text(key)
    path = _path(folder, text)
    meta = json.dumps({"key": text, "initial": int(auto.initial), "regex": auto.regex,
                       "min_tokens": int(auto.min_tokens), "max_tokens": auto.max_tokens})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, meta=np.asarray(meta),
                                **{k: getattr(auto, k) for k in _ARRAYS})
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass
        return None
    return path
