"""CPU profile of one constrained infilling run: where the time of a HumanEval task goes.

    python benchmarks/profile_infill.py [--task SingleLineInfilling/HumanEval/0/L1] [--top 15]

Runs ``infill`` on the task (random denoiser over the embedded model's tokenizer, budget =
canonical tokens + 8, one step per hole position, seed 0) under ``cProfile``, with the automaton
disk cache off (``CDLM_CACHE_DIR=off``, so the compile is measured cold), and prints the total
time, the sampler's compile / forward / constraint split and the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="SingleLineInfilling/HumanEval/0/L1")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    os.environ["CDLM_CACHE_DIR"] = "off"
    import torch
    torch.set_num_threads(a.threads)
    import humaneval_infill as he
    from constrained_dlm import RandomDenoiser, Vocabulary, infill, sampler_options
    split = "single" if a.task.startswith("Single") else "multi"
    task = {t["task_id"]: t for t in he.load_tasks(split)}[a.task]
    vocab = Vocabulary.from_tokenizer(REPO / "constrained_dlm/assets/default-model/tokenizer.json")
    model = RandomDenoiser(vocab, seed=0)
    budget = len(vocab.encode(task["canonical_solution"])) + 8
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    res = infill(model, task["prompt"], task["suffix"], max_tokens=budget,
                 options=sampler_options(model, seed=0))
    prof.disable()
    total = time.perf_counter() - t0
    t = res.timings
    print(f"{a.task}: {total:.1f}s in all (profiled); compile {t['compile_s']:.1f}s, forward "
          f"{t['forward_s']:.2f}s, constraint {t['constraint_s']:.1f}s over {res.nfe} forward "
          f"passes; middle {res.text!r}")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(a.top)
    return {"total_s": total, **t, "nfe": res.nfe}


if __name__ == "__main__":
    main()
