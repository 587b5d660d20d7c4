//! The bypass corpus: real-component tests of the attacks a caller of the proxy socket
//! can try to start a container with host-level power in a namespace where Pod Security
//! `baseline` is enforced. Each case asserts (a) the proxy refuses with a message naming
//! the field or reason and (b) nothing happened on the host: the container does not exist at
//! containerd (asked directly), no task runs, no hook or shim marker file was written.
//!
//! Each test is one class; it runs every variant, prints a `result | case | message |
//! verdict | host` table (`--nocapture`) and fails once, listing every variant not held.
//! The threat model these tests stand for: docs/security.md.

mod common;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox"];

#[path = "bypass/calls.rs"]
mod calls;
#[path = "bypass/containers.rs"]
mod containers;
#[path = "bypass/gojson.rs"]
mod gojson;
#[allow(dead_code)]
#[path = "bypass/kit.rs"]
mod kit;
#[allow(dead_code)]
#[path = "bypass/raw.rs"]
mod raw;
#[path = "bypass/scope.rs"]
mod scope;
#[path = "bypass/spec.rs"]
mod spec;
#[path = "bypass/wire.rs"]
mod wire;
#[path = "bypass/wrapper.rs"]
mod wrapper;
