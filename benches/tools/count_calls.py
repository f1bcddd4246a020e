"""Instructions per call, counted by callgrind, for each comparison `count_calls` knows:
each side runs N and 2N calls under `valgrind --tool=callgrind`, and the difference over
N is one call (start-up cancels). The counts move far less from run to run than the
wall-clock figures.

    cargo build --release --example count_calls
    python3 benches/tools/count_calls.py target/release/examples/count_calls [--runs R] [N] [CASE ...]

Two processes of the same build still differ by up to ~1,000 instructions a call (the
allocator's state, and the timers: the code under count reads the real clock, so a
slower, busier machine gives its timer wheel more to do). Count on an otherwise idle
machine; with `--runs R`, each case is counted R times, and the median and range of its
extra share are printed.

valgrind comes from Debian's package of that name.
"""

import re
import statistics
import subprocess
import sys

CASES = ["fake_server", "trace_id", "logging_sink", "logging_level_off", "retry_layer", "hedging_layer"]


def instructions(binary: str, case: str, side: str, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary, case, side, str(n)],
        check=True, capture_output=True, text=True,
    ).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def count(binary: str, case: str, n: int) -> tuple[float, float]:
    """Instructions a call of the baseline and of the candidate."""
    per = {}
    for side in ("baseline", "candidate"):
        per[side] = (instructions(binary, case, side, 2 * n) - instructions(binary, case, side, n)) / n
    return per["baseline"], per["candidate"]


def main(binary: str, n: int, runs: int, cases: list[str]) -> None:
    for case in cases:
        shares = []
        for _ in range(runs):
            baseline, candidate = count(binary, case, n)
            extra = candidate - baseline
            shares.append(extra / baseline)
            print(f"{case:>18}: baseline {baseline:,.0f}, candidate {candidate:,.0f} instructions a call;"
                  f" {extra:+,.0f} ({extra / baseline:+.1%})", flush=True)
        if runs > 1:
            print(f"{case:>18}: median {statistics.median(shares):+.1%} of {runs} runs,"
                  f" range {min(shares):+.1%} to {max(shares):+.1%}", flush=True)


if __name__ == "__main__":
    args = sys.argv[2:]
    runs = 1
    if args[:1] == ["--runs"]:
        runs, args = int(args[1]), args[2:]
    n = int(args[0]) if args else 3000
    main(sys.argv[1], n, runs, args[1:] or CASES)
