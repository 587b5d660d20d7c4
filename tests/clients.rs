//! The proxy's wire-compatibility matrix: gRPC clients we did not write, each through
//! `portcullis proxy` to a private containerd with its CRI plugin, each checking a real
//! answer: grpc-go dialling by socket path as the kubelet does, Python `grpcio` (the
//! registry's, which percent-encodes the path as `:authority`, and Debian's 1.51), and a
//! raw HTTP/2 client sending an empty and an absent `:authority`. `ctr` and dockerd are
//! driven by `tests/proxy.rs`.

mod common;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &[
    "root",
    "containerd",
    "ctr",
    "runc",
    "busybox",
    "go",
    "grpc-go",
    "protobuf-go",
    "python3-grpcio",
    "grpcio-venv",
];

#[path = "clients/go.rs"]
mod go;
#[path = "clients/python.rs"]
mod python;
#[path = "clients/raw.rs"]
mod raw;
