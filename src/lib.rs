//! Portcullis: Kubernetes-style admission control at the container runtime.
//!
//! Every door (the containerd proxy, the OCI hook, the webhook server, `check`) turns its
//! protocol into one [`review::AdmissionRequest`], asks the one decision core in [`core`],
//! and maps the [`review::Verdict`] back into its protocol. `docs/architecture.md` has the
//! picture.
//!
//! This is one program, not a library: the crate is split into a library only so that the
//! benchmarks and the integration tests can drive its parts. Modules and items are
//! crate-private unless one of those needs them:
//!
//! - `cli`: the binary's entry point.
//! - `config`, `core`, `review`, `metrics`: build a `Decider` from a config and ask it
//!   (benches/decision.rs, benches/serve.rs).
//! - `serve::{routes, listen, review}`: the webhook server in-process (benches/serve.rs,
//!   tests/serve.rs).
//! - `proxy::{grpc, record}`, `convert::{caps, pod, strict}`, `hook::request`, `net::h2`:
//!   the wire formats the integration tests check against real clients and Go's
//!   `encoding/json` (tests/gojson.rs, tests/bypass, tests/serve.rs).
//!
//! - `signature`: image signature verification, which the doors that see images ask
//!   (and the registry tests drive).
//!
//! The policies (`policy`) and the config reloader (`reload`) are reached only through the
//! core and the doors.
// Denied, not forbidden: the one getsockopt(SO_PEERGROUPS) in net::peer is allowed there.
#![deny(unsafe_code)]

pub(crate) mod audit;
pub mod cli;
pub mod config;
pub mod convert;
pub mod core;
// Entry points for the fuzz targets (fuzz/) and tests/fuzz_corpus.rs; not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod hook;
pub(crate) mod install;
pub mod metrics;
pub mod net;
pub(crate) mod policy;
pub mod proxy;
pub(crate) mod reload;
pub mod review;
pub mod serve;
pub mod signature;
pub(crate) mod verify_image;
