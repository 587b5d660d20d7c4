//! Image signature verification (issue #13): whether an image is signed as the
//! `ImageVerificationPolicy` documents of `policyDir` require, asked by the doors that
//! see images (docs/image-verification.md).
//!
//! Pure parts and the one I/O edge, as linkerd keeps a policy decision a pure function
//! inside a thin shell:
//!
//! - [`trust`]: the policy format, loaded and checked; which policies apply to an image
//!   in a namespace ([`glob`]: policy-controller's image globs).
//! - [`cosign`]: cosign's signature tag, manifest and simple-signing payload, checked
//!   against an authority ([`key`]: public keys and signatures with ring; [`rekor`]: the
//!   offline Rekor bundle check).
//! - [`verdict`]: the decision from what was fetched: modes, `failurePolicy`, allow lists.
//! - [`registry`]: the I/O edge — oci-client, TLS, credentials, timeouts.
//! - [`verifier`]: [`Verifier`], the async entry point the doors call.
//!
//! It is not a `policy::ValidatingPolicy`: those are pure and this one needs the network;
//! the core asks it as it asks webhooks (`core::signatures`).
//!
//! Why the cosign format is read here and not by the `sigstore` crate (measured,
//! docs/image-verification.md "Dependencies"): its `cosign` feature brings 133 crates
//! (oauth flows, a second crypto library), its registry client turns an unreachable
//! registry into "no signatures" (so `failurePolicy` could not be honoured) and has no
//! timeouts, and the layer checks it has are crate-private. What is hand-written is the
//! format — the `sha256-<hex>.sig` tag, the simple-signing payload, Rekor's SET — about
//! 200 lines; the cryptography is ring's and x509-parser's, the registry protocol
//! oci-client's. Notation's JWS envelope is read the same way (`notation`): no kept Rust
//! library implements it.

pub mod cosign;
pub mod glob;
pub mod key;
pub mod notation;
pub mod registry;
pub mod rekor;
pub mod trust;
pub mod verdict;
pub mod verifier;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

// The image type `Verifier::verify` takes, for callers outside the crate (tests/).
pub use crate::policy::reference::{ImageRef, ReferenceError};
pub use trust::TrustPolicy;
pub use verdict::{Decision, Outcome, Report, Verdict};
pub use verifier::Verifier;
