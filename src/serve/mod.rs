//! The webhook door: `portcullis serve`, an admission webhook server on the decision core
//! (AdmissionReview, ImageReview, raw objects) over TLS, mTLS, plain TCP and unix sockets.

pub mod config;
pub mod k8s;
pub mod tls;
