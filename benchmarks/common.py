"""What every benchmark shares: the locally trained tokenizers, percentiles, the machine line.

No benchmark downloads anything: the vocabularies are byte-level BPEs trained here on local
Python source (the standard library, then site-packages until ``corpus_mb``), so a 128k
vocabulary like LLaDA's (126k) is reachable offline. Each is cached in
``$TMPDIR/constrained_dlm_bench`` by size and corpus, so every benchmark that asks for
(128000, 60 MB) gets the same file.
"""

from __future__ import annotations

import glob
import os
import platform
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

SPECIALS = ["<pad>", "<mask>", "<eos>"]
DEFAULT_CORPUS_MB = 60.0


def corpus_files(max_mb: float) -> list[str]:
    """The stdlib's top-level ``*.py`` files, then site-packages files until ``max_mb`` MB."""
    files = sorted(glob.glob(os.path.join(os.path.dirname(os.__file__), "*.py")))
    total = sum(os.path.getsize(f) for f in files)
    site = sysconfig.get_paths()["purelib"]
    for f in sorted(glob.glob(os.path.join(site, "**", "*.py"), recursive=True)):
        if total >= max_mb * 1e6:
            break
        files.append(f)
        total += os.path.getsize(f)
    return files


def tokenizer_path(vocab_size: int, corpus_mb: float = DEFAULT_CORPUS_MB,
                   cache_dir: str | None = None, verbose: bool = True) -> str:
    """Path of a ``vocab_size``-token byte-level BPE (specials ``<pad> <mask> <eos>``), trained once.

    ``corpus_mb=0`` trains on the stdlib's top-level files only (quick, for smoke tests).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    cache = Path(cache_dir or os.path.join(tempfile.gettempdir(), "constrained_dlm_bench"))
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"bpe-{vocab_size}-{corpus_mb:g}mb.json"
    if path.is_file():
        return str(path)
    files = corpus_files(corpus_mb)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    t0 = time.perf_counter()
    tok.train(files, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if verbose:
        print(f"trained a {tok.get_vocab_size()}-token byte-level BPE on {len(files)} local Python "
              f"files in {time.perf_counter() - t0:.0f} s -> {path}", file=sys.stderr)
    tmp = f"{path}.{os.getpid()}.tmp"
    tok.save(tmp)
    os.replace(tmp, path)
    return str(path)


def pct(values, q: float):
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def dist(values) -> dict:
    """n, mean, p50, p90, p99, max of a list of numbers (None when empty)."""
    return {"n": len(values), "mean": float(np.mean(values)) if values else None,
            "p50": pct(values, 50), "p90": pct(values, 90), "p99": pct(values, 99),
            "max": float(max(values)) if values else None}


def machine() -> dict:
    """CPU model, cores, Python and library versions: printed with every result."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    out = {"cpu": cpu or platform.machine(), "cores": os.cpu_count(),
           "python": platform.python_version(), "platform": platform.platform()}
    for mod in ("torch", "outlines_core", "llguidance", "transformers"):
        try:
            from importlib.metadata import version
            out[mod] = version(mod.replace("_", "-"))
        except Exception:  # noqa: BLE001 - not installed: leave it out
            pass
    return out


def sample_indices(n: int, k: int | None) -> list[int]:
    """``k`` evenly spaced indices into ``range(n)`` (all of them when ``k`` is None or >= n)."""
    if k is None or k >= n:
        return list(range(n))
    if k <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, n - 1, k).round()})


def sample_files(files: list[str], limit: int | None) -> list[str]:
    return [files[i] for i in sample_indices(len(files), limit or None)]
