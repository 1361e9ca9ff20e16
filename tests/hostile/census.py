"""Count fuzz outcomes over a fixed range of seeds per category (the figures in docs/security.md).

    PYTHONPATH=.:tests python tests/hostile/census.py [CASES_PER_CATEGORY] [category ...]

Prints one line per category (ok / neurocc error / foreign exception / hang) and, for every
foreign exception or hang, the category, seed and message.
"""
from __future__ import annotations

import logging
import random
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from hostile.cases import CATEGORIES, base_files, outcome


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 50
    names = argv[1:] or list(CATEGORIES)
    logging.disable(logging.CRITICAL)
    root = Path(tempfile.mkdtemp(prefix="neurocc-census-"))
    base = base_files(root / "base")
    total: Counter[str] = Counter()
    findings = []
    for name in names:
        counts: Counter[str] = Counter()
        for seed in range(n):
            work = root / f"{name}-{seed}"
            work.mkdir()
            kind, err = outcome(CATEGORIES[name](random.Random(seed), base, work))
            counts[kind] += 1
            if kind in ("foreign", "hang"):
                findings.append(f"{name} seed {seed}: {type(err).__name__}: {str(err)[:160]}")
            shutil.rmtree(work, ignore_errors=True)
        total.update(counts)
        print(f"{name:9} ok {counts['ok']:4}  neurocc {counts['neurocc']:4}  foreign {counts['foreign']:4}  "
              f"hang {counts['hang']:3}", flush=True)
    print(f"{'total':9} ok {total['ok']:4}  neurocc {total['neurocc']:4}  foreign {total['foreign']:4}  "
          f"hang {total['hang']:3}  ({sum(total.values())} cases)")
    for line in findings:
        print(line.replace("\n", " | "))
    shutil.rmtree(root, ignore_errors=True)
    return 1 if total["foreign"] or total["hang"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
