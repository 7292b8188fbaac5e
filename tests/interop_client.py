"""Titan-KV interoperability client: talks to a node with Python grpcio,
a gRPC implementation this project did not write, knowing nothing but
proto/titan.proto.

The proto is compiled at test time (protoc --python_out, or grpc_tools);
every method path and message class is taken from the compiled
descriptor, so the test checks the schema as well as the server.

usage: interop_client.py GENERATED_DIR HOST:PORT DEAD_HOST:PORT [--verify]
The full run ends by writing PERSIST_KEYS binary keys; --verify (after a
restart or a kill -9 of the node) checks that every one of those
acknowledged writes is there, and only that.
Exits 0 when every check passed, 1 with the failed check otherwise.
"""
import hashlib
import sys
import time

sys.path.insert(0, sys.argv[1])
import grpc                                   # noqa: E402
import titan_pb2 as pb                        # noqa: E402

TARGET, DEAD = sys.argv[2], sys.argv[3]
MAX_KEY, MAX_VALUE = 65535, 8 * 1024 * 1024

channel = grpc.insecure_channel(TARGET, options=[
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1)])
checks = 0


def method(service, name, target_channel=None):
    """A callable for service/name, typed from the proto's descriptor."""
    desc = pb.DESCRIPTOR.services_by_name[service].methods_by_name[name]
    request_cls = getattr(pb, desc.input_type.name)
    response_cls = getattr(pb, desc.output_type.name)
    call = (target_channel or channel).unary_unary(
        "/%s/%s" % (desc.containing_service.full_name, desc.name),
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString)
    return lambda timeout=10, **fields: call(request_cls(**fields), timeout=timeout)


def expect_error(code, text, fn, **fields):
    """Calls fn and checks it fails with `code` and `text` in the details."""
    global checks
    try:
        fn(**fields)
    except grpc.RpcError as err:
        assert err.code() == code, (err.code(), err.details(), code)
        assert text in (err.details() or ""), (err.details(), text)
        checks += 1
        return err
    raise AssertionError("expected %s, call succeeded" % code)


Put = method("KV", "Put")
Get = method("KV", "Get")
Delete = method("KV", "Delete")
Cas = method("KV", "CompareAndSwap")

PERSIST_KEYS = 40


def persist_item(i):
    """The i-th binary key and value written before a restart."""
    digest = hashlib.sha256(b"persist-%d" % i).digest()
    return b"\x00p" + digest[:8] + bytes([i]), digest * (1 + i * 7)


if len(sys.argv) > 4 and sys.argv[4] == "--verify":
    for i in range(PERSIST_KEYS):
        key, value = persist_item(i)
        got = Get(key=key)
        assert got.value == value, "persisted key %d changed" % i
    assert Get(key=b"cas").value == b"two"
    expect_error(grpc.StatusCode.NOT_FOUND, "not found", Get, key=persist_item(0)[0] + b"x")
    print("interop: %d acknowledged writes read back after the restart" % PERSIST_KEYS)
    sys.exit(0)

# binary keys and values, revisions
key = b"\x00\xffinterop\x00key\n"
value = bytes(range(256)) * 40
r1 = Put(key=key, value=value).revision
r2 = Put(key=key, value=value[::-1]).revision
assert 0 < r1 < r2, (r1, r2)
got = Get(key=key)
assert got.value == value[::-1] and got.revision == r2, got.revision
got = Get(key=key, consistency=pb.LOCAL)
assert got.value == value[::-1]
checks += 3

# delete
d = Delete(key=key)
assert d.deleted == 1 and d.revision > r2, d
assert Delete(key=key).deleted == 0
expect_error(grpc.StatusCode.NOT_FOUND, "not found", Get, key=key)
checks += 2

# compare-and-swap: create if absent, then by revision
c1 = Cas(key=b"cas", expected_revision=0, value=b"one").revision
c2 = Cas(key=b"cas", expected_revision=c1, value=b"two").revision
assert c2 > c1
expect_error(grpc.StatusCode.FAILED_PRECONDITION,
             "expected revision %d, current revision is %d" % (c1, c2),
             Cas, key=b"cas", expected_revision=c1, value=b"three")
expect_error(grpc.StatusCode.FAILED_PRECONDITION, "exists at revision %d" % c2,
             Cas, key=b"cas", expected_revision=0, value=b"three")
assert Get(key=b"cas").value == b"two"
checks += 2

# limits: exactly at the limit works, one byte over is INVALID_ARGUMENT
big = b"\xab" * MAX_VALUE
Put(key=b"big", value=big, timeout=60)
assert Get(key=b"big", timeout=60).value == big
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "over the limit of %d (max_value_bytes)" % MAX_VALUE,
             Put, key=b"big", value=big + b"!", timeout=60)
long_key = b"\x01" * MAX_KEY
Put(key=long_key, value=b"v")
assert Get(key=long_key).value == b"v"
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "over the limit of %d (max_key_bytes)" % MAX_KEY,
             Put, key=long_key + b"\x01", value=b"v")
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "key is empty", Put, key=b"", value=b"v")
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "key is empty", Get, key=b"")
checks += 2

# unknown enum value
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "consistency 9", Get, key=b"cas", consistency=9)

# a deferred put (hinted handoff): accepted, not yet committed, then delivered
reply = Put(key=b"deferred", value=b"later", deferred=True)
assert reply.deferred and reply.revision == 0, reply
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "key is empty", Put, key=b"", value=b"v",
             deferred=True)
until = time.time() + 30
while True:
    try:
        if Get(key=b"deferred").value == b"later":
            break
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            raise
    assert time.time() < until, "the deferred put was not delivered within 30 s"
    time.sleep(0.1)
checks += 1

# deadlines and unavailability, as this client sees them
expect_error(grpc.StatusCode.DEADLINE_EXCEEDED, "", Put, key=b"k", value=b"v", timeout=0.000001)
dead_channel = grpc.insecure_channel(DEAD)
expect_error(grpc.StatusCode.UNAVAILABLE, "", method("KV", "Get", dead_channel), key=b"k")

# cluster and admin services
status = method("Cluster", "Status")()
assert len(status.nodes) == 1 and status.nodes[0].state == "up", status
assert status.shards[0].leader == status.node_id, status
assert list(status.shards[0].replicas) == [status.node_id], status
members = method("Cluster", "MemberList")().members
assert [m.id for m in members] == [status.node_id], members
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "is not host:port",
             method("Cluster", "Join"), node_id="n2", client_addr="a", peer_addr="a:2")
# ring placement (the default): Leave drains a member of the ring
expect_error(grpc.StatusCode.NOT_FOUND, "not a member of the ring",
             method("Cluster", "Leave"), node_id="n2")
expect_error(grpc.StatusCode.FAILED_PRECONDITION, "not a voter",
             method("Cluster", "TransferLeader"), shard=0, target_node_id="n2")
modules = {m.name for m in method("Admin", "ListModules")().modules}
assert {"bitcask", "grpc_gateway"} <= modules, modules
expect_error(grpc.StatusCode.NOT_FOUND, "", method("Admin", "RestartModule"), name="nosuch")
method("Admin", "Merge")(shard=0, timeout=60)
# Q = 16 shards (the default): shard 16 does not exist
expect_error(grpc.StatusCode.INVALID_ARGUMENT, "shard 16", method("Admin", "Merge"), shard=16)
checks += 4

# an unknown method of the service
expect_error(grpc.StatusCode.UNIMPLEMENTED, "unknown method",
             lambda **kw: channel.unary_unary("/titan.v1.KV/Scan")(b"", timeout=5))

# acknowledged writes to read back after a restart (--verify)
for i in range(PERSIST_KEYS):
    key, value = persist_item(i)
    Put(key=key, value=value)

print("interop: %d checks passed with grpcio %s" % (checks, grpc.__version__))
