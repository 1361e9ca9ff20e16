"""For each .pt2 payload kind: does neurocc.load run it? (figures in docs/security.md)

    PYTHONPATH=.:tests python tests/hostile/pt2_census.py
"""
import logging, tempfile, warnings
from pathlib import Path
logging.disable(logging.CRITICAL); warnings.simplefilter("ignore")
import neurocc
from hostile.payloads import cached_plain_pt2, pt2_payloads
d = Path(tempfile.mkdtemp()); m = d / "MARK"
fired = 0
for kind, p in pt2_payloads(cached_plain_pt2(), d, m).items():
    if m.exists(): m.unlink()
    try: neurocc.load(p); r = "loaded"
    except neurocc.NeuroccError: r = "neurocc error"
    except Exception as e: r = "foreign " + type(e).__name__
    fired += m.exists()
    print(f"{kind:24} payload ran: {m.exists()!s:5}  -> {r}")
print("payloads that ran:", fired)
