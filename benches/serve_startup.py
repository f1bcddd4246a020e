"""Start-up time of `grpc-chaos serve` with a 50-file proto tree, paired against the
same server with no protos loaded, in one run.

Each file `pkgN/v1/svcN.proto` imports the one before it and google/protobuf/timestamp,
and defines a service of 4 methods and 6 messages (nested types, an enum, a map, a
repeated field). Rounds alternate which side starts first; a round times process start
to the first stdout line (`listening on ...`), which is printed once every proto and
scenario is compiled and the port is bound.

    python3 benches/serve_startup.py target/release/grpc-chaos [ROUNDS]
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = 50


def write_tree(root: Path) -> list[Path]:
    paths = []
    for i in range(FILES):
        path = root / f"pkg{i}" / "v1" / f"svc{i}.proto"
        path.parent.mkdir(parents=True)
        imports = ['import "google/protobuf/timestamp.proto";']
        if i > 0:
            imports.append(f'import "pkg{i - 1}/v1/svc{i - 1}.proto";')
        previous = f"pkg{i - 1}.v1.Item" if i > 0 else "google.protobuf.Timestamp"
        path.write_text(
            f"""syntax = "proto3";
package pkg{i}.v1;
{chr(10).join(imports)}

service Service{i} {{
  rpc Get(GetRequest) returns (Item);
  rpc List(ListRequest) returns (stream Item);
  rpc Upload(stream Item) returns (Summary);
  rpc Sync(stream Item) returns (stream Item);
}}

enum State {{ STATE_UNSPECIFIED = 0; ON = 1; OFF = 2; }}

message GetRequest {{ string id = 1; Filter filter = 2; message Filter {{ string region = 1; }} }}
message ListRequest {{ int32 page_size = 1; string page_token = 2; }}
message Item {{
  string id = 1;
  State state = 2;
  repeated string tags = 3;
  map<string, int64> counts = 4;
  google.protobuf.Timestamp at = 5;
  {previous} previous = 6;
}}
message Summary {{ int32 count = 1; repeated string ids = 2; }}
message Extra {{ bytes blob = 1; double ratio = 2; }}
"""
        )
        paths.append(path)
    return paths


def start_once(argv: list[str]) -> float:
    started = time.perf_counter()
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    took = time.perf_counter() - started
    server.terminate()
    server.wait(timeout=10)
    assert line.startswith("listening on "), line
    return took


def main(binary: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        protos = write_tree(root)
        base = [binary, "serve", "--addr", "127.0.0.1:0"]
        loaded = base + [a for p in protos for a in ("--proto", str(p))] + ["--proto-path", str(root)]
        bare_times, loaded_times = [], []
        for round_ in range(rounds):
            order = [(bare_times, base), (loaded_times, loaded)]
            if round_ % 2:
                order.reverse()
            for times, argv in order:
                times.append(start_once(argv))
    ms = lambda xs: [x * 1000 for x in xs]
    for name, xs in [("no protos", ms(bare_times)), (f"{FILES} proto files", ms(loaded_times))]:
        print(f"{name:>16}: median {statistics.median(xs):.1f} ms, min {min(xs):.1f}, max {max(xs):.1f} ({len(xs)} starts)")
    diffs = sorted(l - b for l, b in zip(ms(loaded_times), ms(bare_times)))
    print(f"{'paired extra':>16}: median {statistics.median(diffs):.1f} ms, spread {diffs[0]:.1f} to {diffs[-1]:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 15)
