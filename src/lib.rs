//! Portcullis: Kubernetes-style admission control at the container runtime.
//!
//! Every door (the containerd proxy, the OCI hook, the webhook server, `check`) turns its
//! protocol into one [`review::AdmissionRequest`], asks the one decision core in [`core`],
//! and maps the [`review::Verdict`] back into its protocol.
// Denied, not forbidden: the one getsockopt(SO_PEERGROUPS) in net::peer is allowed there.
#![deny(unsafe_code)]

pub mod cli;
pub mod config;
pub mod convert;
pub mod core;
pub mod hook;
pub mod metrics;
pub mod net;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod review;
pub mod serve;
