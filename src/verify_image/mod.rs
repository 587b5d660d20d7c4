//! The `verify-image` door: containerd 2.x's image-verifier plugin runs
//! `portcullis verify-image` for every pull through its transfer service, and the pull goes
//! on only if it exits 0 (`contract` has the protocol).

pub(crate) mod contract;
