"""cc_grpc_proto: C++ protobuf + gRPC code from one .proto, offline.

Runs Debian's protoc with grpc_cpp_plugin; code includes "proto/NAME.pb.h"
and "proto/NAME.grpc.pb.h". `deps` are other cc_grpc_proto targets whose
.proto files this one imports.
"""

def cc_grpc_proto(name, src, deps = [], proto_deps = [], visibility = None):
    base = src[:-len(".proto")]
    outs = [
        base + ".pb.h",
        base + ".pb.cc",
        base + ".grpc.pb.h",
        base + ".grpc.pb.cc",
    ]
    native.genrule(
        name = name + "_gen",
        srcs = [src] + proto_deps,
        outs = outs,
        cmd = ("protoc -I. -I$(GENDIR) --cpp_out=$(GENDIR) --grpc_out=$(GENDIR) " +
               "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin $(location " + src + ")"),
    )
    native.cc_library(
        name = name,
        srcs = [base + ".pb.cc", base + ".grpc.pb.cc"],
        hdrs = [base + ".pb.h", base + ".grpc.pb.h"],
        deps = deps + ["//third_party:grpc"],
        visibility = visibility,
    )
