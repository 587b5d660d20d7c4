//! The webhook door: `portcullis serve`, an admission webhook server on the decision core
//! (AdmissionReview, ImageReview, raw objects) over TLS, mTLS, plain TCP and unix sockets.
//!
//! - `config`: the `serve:` section; `listen`: listeners and connections;
//! - `routes`: the endpoints; `review`, `image_review`: the two wire protocols;
//! - `tls`: certificates (re-read on rotation) and client identities;
//! - `events`: lifecycle events from the hook door, and their subscribers;
//! - `k8s`: the Kubernetes objects that point kube-apiserver here (`--print-k8s-config`).

pub(crate) mod events;
pub(crate) mod image_review;
pub(crate) mod k8s;
pub mod listen;
pub mod review;
pub mod routes;
pub(crate) mod tls;

#[cfg(test)]
mod tests;
