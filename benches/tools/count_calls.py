"""Instructions per call, counted by callgrind, for each comparison `count_calls` knows:
each side runs N and 2N calls under `valgrind --tool=callgrind`, and the difference over
N is one call (start-up cancels). The counts repeat exactly from run to run, unlike the
wall-clock figures.

    cargo build --release --example count_calls
    python3 benches/tools/count_calls.py target/release/examples/count_calls [N] [CASE ...]

valgrind comes from Debian's package of that name.
"""

import re
import subprocess
import sys

CASES = ["fake_server", "trace_id", "logging_sink", "logging_level_off", "retry_layer", "hedging_layer"]


def instructions(binary: str, case: str, side: str, n: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary, case, side, str(n)],
        check=True, capture_output=True, text=True,
    ).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main(binary: str, n: int, cases: list[str]) -> None:
    for case in cases:
        per = {}
        for side in ("baseline", "candidate"):
            per[side] = (instructions(binary, case, side, 2 * n) - instructions(binary, case, side, n)) / n
        extra = per["candidate"] - per["baseline"]
        print(f"{case:>18}: baseline {per['baseline']:,.0f}, candidate {per['candidate']:,.0f} instructions a call;"
              f" {extra:+,.0f} ({extra / per['baseline']:+.1%})")


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    main(sys.argv[1], n, sys.argv[3:] or CASES)
