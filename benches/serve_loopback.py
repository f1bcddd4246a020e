"""`grpc-chaos serve` against a plain tonic `TestService` server over loopback, paired,
in one run: h2load sends EmptyCall from its own process (60,000 calls, 8 connections of
16 concurrent streams each), alternating the servers round by round.

The baseline is `cli/examples/tonic_interop_reference.rs`, a tonic server set up as
tonic's interop server is. `serve` runs three ways: with its default logging (INFO: one
line per call, when it ends, to stderr), with that line off
(`RUST_LOG=info,grpc_chaos::fake::journal=warn`), with a journal of 100,000 calls
instead of its default 1,000, and with a scenario of 500 stubs on 50 other services
mounted (the stub-index target, over loopback).
Each round runs every server once, in a rotated order; the figure for a server is the
median, over rounds, of its throughput divided by the baseline's in the same round.

    cargo build --release -p grpc-chaos-cli --bin grpc-chaos --example tonic_interop_reference
    python3 benches/serve_loopback.py target/release [ROUNDS]

h2load comes from Debian's nghttp2-client package.
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CALLS = 60_000
CONNECTIONS = 8
STREAMS = 16
PATH = "/grpc.testing.TestService/EmptyCall"


def start(argv: list[str], log: str | None) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    if log is not None:
        env["RUST_LOG"] = log
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = server.stdout.readline()
    assert line.startswith("listening on "), line
    return server, line.split()[-1]


def load(addr: str, body: Path) -> float:
    out = subprocess.run(
        ["h2load", "-n", str(CALLS), "-c", str(CONNECTIONS), "-m", str(STREAMS), "-d", str(body),
         "-H", "content-type: application/grpc", "-H", "te: trailers", f"http://{addr}{PATH}"],
        check=True, capture_output=True, text=True,
    ).stdout
    done = re.search(r"requests: .* (\d+) succeeded", out)
    assert done and int(done.group(1)) == CALLS, out
    assert f"status codes: {CALLS} 2xx" in out, out
    return float(re.search(r"finished in .*?, ([\d.]+) req/s", out).group(1))


def crowded_scenario(path: Path) -> Path:
    """500 stubs on 50 services nobody calls, as the in-process stub bench mounts."""
    path.write_text("\n".join(
        f'[[stub]]\nmethod = "/other.Service{i % 50}/Method{i}"\nreply = {{ status = {{ code = "OK" }} }}\n'
        for i in range(500)
    ))
    return path


def main(bin_dir: str, rounds: int) -> None:
    binary = str(Path(bin_dir) / "grpc-chaos")
    reference = str(Path(bin_dir) / "examples" / "tonic_interop_reference")
    serve = [binary, "serve", "--addr", "127.0.0.1:0"]
    scratch = tempfile.TemporaryDirectory()
    crowded = crowded_scenario(Path(scratch.name) / "crowded.toml")
    servers = {
        "tonic TestService (baseline)": ([reference, "127.0.0.1:0"], None),
        "serve, default logging (INFO)": (serve, None),
        "serve, per-call lines off": (serve, "info,grpc_chaos::fake::journal=warn"),
        "serve, --journal-calls 100000": (serve + ["--journal-calls", "100000"], None),
        "serve, 500 stubs on other methods": (serve + ["--scenario", str(crowded)], None),
    }
    names = list(servers)
    running = {name: start(argv, log) for name, (argv, log) in servers.items()}
    rps = {name: [] for name in names}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            body = Path(tmp) / "empty.bin"
            body.write_bytes(b"\x00\x00\x00\x00\x00")  # one uncompressed, empty message
            for name in names:  # warm each server (connections, allocator, caches)
                load(running[name][1], body)
            for round_ in range(rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    rps[name].append(load(running[name][1], body))
    finally:
        for server, _ in running.values():
            server.terminate()
            server.wait(timeout=30)
        scratch.cleanup()
    baseline = rps[names[0]]
    print(f"{CALLS} EmptyCall, {CONNECTIONS} connections x {STREAMS} streams, {rounds} rounds")
    for name in names:
        line = f"{name:>32}: median {statistics.median(rps[name]):,.0f} calls/s"
        if name != names[0]:
            ratios = sorted(c / b for c, b in zip(rps[name], baseline))
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            line += (f"; {statistics.median(ratios):.3f}x the baseline's throughput"
                     f" (middle half {q[0]:.3f}-{q[2]:.3f}, all {ratios[0]:.3f}-{ratios[-1]:.3f})")
        print(line)
    crowd, plain = rps["serve, 500 stubs on other methods"], rps["serve, default logging (INFO)"]
    ratios = sorted(c / p for c, p in zip(crowd, plain))
    print(f"{'500 stubs vs none':>32}: {statistics.median(ratios):.3f}x the throughput"
          f" (all {ratios[0]:.3f}-{ratios[-1]:.3f})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 9)
