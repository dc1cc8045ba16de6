"""A go-plugin plugin in Python, in the style of hashicorp/go-plugin's Python example.

It does not use plughost: only grpcio and grpcio-health-checking. It serves
- go-plugin's health check ("plugin" → SERVING) and GRPCController/Shutdown,
- go-plugin's example KV service (proto.KV: Get/Put),
- Jank's PluginService (Execute "put" / "get" / "echo"; values are google.protobuf.Value in Any),
listens on TCP within PLUGIN_MIN_PORT..PLUGIN_MAX_PORT and prints the handshake line.
"""

import os
import socket
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "generated"))

import grpc
import grpc_controller_pb2
import grpc_controller_pb2_grpc
import jank_pb2
import jank_pb2_grpc
import kv_pb2
import kv_pb2_grpc
from google.protobuf import any_pb2, struct_pb2
from google.protobuf.json_format import MessageToDict, ParseDict
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

COOKIE_KEY, COOKIE_VALUE = "JANK_PLUGIN", "jank-plugin"


class KV(kv_pb2_grpc.KVServicer):
    def __init__(self):
        self.values = {}
        self.lock = threading.Lock()

    def Get(self, request, context):
        with self.lock:
            return kv_pb2.GetResponse(value=self.values.get(request.key, b""))

    def Put(self, request, context):
        with self.lock:
            self.values[request.key] = request.value
        return kv_pb2.Empty()


def unpack(args):
    out = {}
    for key, packed in args.items():
        value = struct_pb2.Value()
        packed.Unpack(value)
        out[key] = MessageToDict(value)
    return out


def pack(data):
    out = {}
    for key, item in data.items():
        value = struct_pb2.Value()
        ParseDict(item, value)
        holder = any_pb2.Any()
        holder.Pack(value)
        out[key] = holder
    return out


class PluginService(jank_pb2_grpc.PluginServiceServicer):
    def __init__(self, kv):
        self.kv = kv

    def Execute(self, request, context):
        args = unpack(request.args)
        if request.method == "put":
            self.kv.Put(kv_pb2.PutRequest(key=args["key"], value=str(args["value"]).encode()), context)
            return jank_pb2.ExecuteResponse(data=pack({"stored": args["key"]}))
        if request.method == "get":
            value = self.kv.Get(kv_pb2.GetRequest(key=args["key"]), context).value.decode()
            return jank_pb2.ExecuteResponse(data=pack({"value": value}))
        if request.method == "echo":
            return jank_pb2.ExecuteResponse(data=pack(args))
        context.abort(grpc.StatusCode.UNKNOWN, f"unknown method {request.method!r}")

    def HealthCheck(self, request, context):
        return jank_pb2.HealthCheckResponse(status="healthy")


class Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, stop):
        self.stop = stop

    def Shutdown(self, request, context):
        self.stop.set()
        return grpc_controller_pb2.Empty()


def free_port():
    low = int(os.environ.get("PLUGIN_MIN_PORT", "10000"))
    high = int(os.environ.get("PLUGIN_MAX_PORT", "25000"))
    for port in range(low, high + 1):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {low}..{high}")


def main():
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write("This binary is a plugin. These are not meant to be executed directly.\n")
        return 1
    stop = threading.Event()
    kv = KV()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    health_servicer = health.HealthServicer()
    health_servicer.set("plugin", health_pb2.HealthCheckResponse.ServingStatus.Value("SERVING"))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    kv_pb2_grpc.add_KVServicer_to_server(kv, server)
    jank_pb2_grpc.add_PluginServiceServicer_to_server(PluginService(kv), server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(stop), server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"1|1|tcp|127.0.0.1:{port}|grpc", flush=True)
    sys.stderr.write("[INFO] python kv plugin serving\n")
    sys.stderr.flush()
    stop.wait()
    server.stop(0.5)
    time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
