//! OPA Gatekeeper: ConstraintTemplates and their Constraints from `policyDir`, evaluated in
//! process with no API server.
//!
//! - [`schema`]: a Constraint's `spec.parameters` checked against its template's
//!   `openAPIV3Schema` (and defaulted) at load, as kube-apiserver checks the Constraint CRD
//!   that Gatekeeper generates.

// The loader that uses it is built on another branch; drop this allow when they meet.
#[cfg_attr(not(test), allow(dead_code))]
pub mod schema;

#[cfg(test)]
mod schema_tests;
