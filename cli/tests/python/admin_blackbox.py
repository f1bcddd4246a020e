"""The admin API of `grpc-chaos serve`, from a client that is not this project's code.

Python grpcio, with every type built at run time from the server's own reflection
(grpcio-reflection's descriptor database): no proto file and no generated code. It
mounts a stub for the test-only catalog.v1 service, calls it, lists the calls with their
deadline and cancel instants, watches an ending arrive, verifies unmet and met, resets,
and runs two sessions side by side. Health is checked with grpcio-health-checking.

    python admin_blackbox.py BINARY PROTO_ROOT

(PROTO_ROOT is cli/tests/proto: the server loads catalog/v1/catalog.proto from it.)

Exits non-zero, naming the check, on the first failure. CI runs it (.ci/run).
"""

import subprocess
import sys
import threading
import time

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.json_format import MessageToDict
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

ADMIN = "grpc_chaos.admin.v1.Admin"
CATALOG = "catalog.v1.Catalog"


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"ok: {what}")


class Client:
    """Calls any method of a service the server reflects, with dicts in and out."""

    def __init__(self, channel):
        self.channel = channel
        self.pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))

    def _method(self, service, name):
        method = self.pool.FindServiceByName(service).FindMethodByName(name)
        return GetMessageClass(method.input_type), GetMessageClass(method.output_type)

    def unary(self, service, name, body, session=None, timeout=None):
        request_type, response_type = self._method(service, name)
        call = self.channel.unary_unary(
            f"/{service}/{name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        metadata = [("x-chaos-session", session)] if session else None
        return call(request_type(**body), metadata=metadata, timeout=timeout)

    def unary_future(self, service, name, body):
        request_type, response_type = self._method(service, name)
        call = self.channel.unary_unary(
            f"/{service}/{name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        return call.future(request_type(**body))

    def stream(self, service, name, body, session=None):
        request_type, response_type = self._method(service, name)
        call = self.channel.unary_stream(
            f"/{service}/{name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_type.FromString,
        )
        metadata = [("x-chaos-session", session)] if session else None
        return call(request_type(**body), metadata=metadata)


def seconds(duration):
    return duration.seconds + duration.nanos / 1e9


def main(binary, proto_root):
    proto = f"{proto_root}/catalog/v1/catalog.proto"
    server = subprocess.Popen(
        [binary, "serve", "--addr", "127.0.0.1:0", "--proto", proto, "--proto-path", proto_root],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        addr = server.stdout.readline().strip().removeprefix("listening on ")
        channel = grpc.insecure_channel(addr)
        grpc.channel_ready_future(channel).result(timeout=10)
        run(Client(channel), channel)
        # SIGTERM with this client's connection still open: the server drains and exits
        # 0 promptly, though grpcio never acks the PING of hyper's graceful shutdown.
        started = time.monotonic()
        server.terminate()
        code = server.wait(timeout=10)
        took = time.monotonic() - started
        check(code == 0 and took < 3, f"SIGTERM drains and exits 0 in {took:.2f}s")
    finally:
        if server.poll() is None:
            server.kill()


def run(client, channel):
    # Health: SERVING for the server and for the loaded service.
    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", CATALOG]:
        status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
        check(status == health_pb2.HealthCheckResponse.SERVING, f"health {service!r} is SERVING")

    # Mount: a table stub for the loaded service, and a stub that hangs.
    text = """
[[stub]]
name = "anvil"
method = "/catalog.v1.Catalog/GetProduct"
expect = 2
match = { message_contains = { sku = "A-1" } }
reply = { message = { sku = "A-1", title = "Anvil", availability = "IN_STOCK", price = { currency = "EUR", units = "1999" } } }

[[stub]]
name = "hang"
method = "/catalog.v1.Catalog/GetProduct"
match = { message = { sku = "slow" } }
reply = { hang = true }
"""
    ids = client.unary(ADMIN, "Mount", {"text": text}).stub_ids
    check(len(ids) == 2, "mount returns one id per stub")
    bad = None
    try:
        client.unary(ADMIN, "Mount", {"text": "[[stub]]\nmethod = 5\n"})
    except grpc.RpcError as e:
        bad = e
    check(
        bad is not None and bad.code() == grpc.StatusCode.INVALID_ARGUMENT
        and bad.details().startswith("admin.toml:2:10:"),
        "malformed text is INVALID_ARGUMENT with line:col",
    )

    # Watch: an ending arrives as it happens.
    watched = []
    watch = client.stream(ADMIN, "WatchCalls", {"method": "/catalog.v1.Catalog/GetProduct"})

    def read_one():
        for call in watch:
            watched.append(call)
            return

    reader = threading.Thread(target=read_one)
    reader.start()
    time.sleep(0.2)  # lets the watch be registered before the call it is to see

    # A call with a deadline, answered by the table stub: typed fields out.
    product = client.unary(CATALOG, "GetProduct", {"sku": "A-1"}, timeout=2.5)
    check(product.title == "Anvil" and product.price.units == 1999, "a table reply arrives typed")
    reader.join(timeout=10)
    check(len(watched) == 1 and watched[0].ending.kind == 2, "watch streams the ending (STATUS)")
    watch.cancel()

    # A call the client cancels after 100 ms.
    future = client.unary_future(CATALOG, "GetProduct", {"sku": "slow"})
    time.sleep(0.1)
    future.cancel()
    time.sleep(0.2)  # the server notices the RST_STREAM

    calls = client.unary(ADMIN, "ListCalls", {"method": "/catalog.v1.Catalog/GetProduct"}).calls
    check(len(calls) == 2, "list calls filters by method")
    answered, cancelled = calls
    # grpcio sends its own rounding of the 2.5 s (seen: 2510m).
    check(answered.grpc_timeout != "" and 2.4 < seconds(answered.timeout) <= 2.6,
          f"the raw and parsed grpc-timeout are kept ({answered.grpc_timeout})")
    check(abs(seconds(answered.deadline) - seconds(answered.arrived_at) - seconds(answered.timeout)) < 1e-6,
          "the deadline is arrival + timeout")
    check(answered.requests[0].json == '{"sku":"A-1"}', "the request is kept as JSON")
    check(MessageToDict(answered)["stub"] == "anvil", "and the stub that answered")
    check(cancelled.ending.kind == 3, "the abandoned call ended CANCELLED")
    took = seconds(cancelled.ending.at) - seconds(cancelled.arrived_at)
    check(0.09 < took < 1.0, f"the cancel instant is kept ({took:.3f}s after arrival)")
    check(cancelled.ending.requests_received == 1 and cancelled.ending.responses_sent == 0,
          "and what had crossed by then")

    # Verify: unmet (one call of two), then met.
    verdict = client.unary(ADMIN, "Verify", {})
    check(not verdict.ok and "expected exactly 2 call(s), received 1" in verdict.report,
          "verify reports the unmet expectation")
    client.unary(CATALOG, "GetProduct", {"sku": "A-1", "filter": {"region": "eu"}})
    check(client.unary(ADMIN, "Verify", {}).ok, "verify is met after the second call")

    # Reset: the API's stubs and the journal.
    reset = client.unary(ADMIN, "Reset", {})
    check(reset.stubs_unmounted == 2, "reset unmounts the API's stubs")
    check(len(client.unary(ADMIN, "ListCalls", {}).calls) == 0, "reset clears the journal")

    # Two sessions side by side.
    for session in ["alpha", "beta"]:
        text = f'[[stub]]\nmethod = "/catalog.v1.Catalog/GetProduct"\nreply = {{ message = {{ title = "{session}" }} }}\n'
        client.unary(ADMIN, "Mount", {"text": text}, session=session)
    for session in ["alpha", "beta", "beta"]:
        got = client.unary(CATALOG, "GetProduct", {"sku": "x"}, session=session).title
        check(got == session, f"session {session} gets its own stub")
    alpha = client.unary(ADMIN, "ListCalls", {}, session="alpha").calls
    beta = client.unary(ADMIN, "ListCalls", {}, session="beta").calls
    check((len(alpha), len(beta)) == (1, 2), "each session lists only its own calls")
    client.unary(ADMIN, "Reset", {}, session="alpha")
    check(client.unary(CATALOG, "GetProduct", {"sku": "x"}, session="beta").title == "beta",
          "resetting one session leaves the other")

    # Health, set through the admin API.
    client.unary(ADMIN, "SetHealth", {"service": CATALOG, "status": "NOT_SERVING"})
    status = health.Check(health_pb2.HealthCheckRequest(service=CATALOG)).status
    check(status == health_pb2.HealthCheckResponse.NOT_SERVING, "health follows SetHealth")
    print("all admin API checks passed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
