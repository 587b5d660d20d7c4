//! Gatekeeper ConstraintTemplates and their constraints, from `policyDir`.
//!
//! - [`rego`]: the templates' Rego, compiled and evaluated with regorus.

// Called by the ConstraintTemplate loader, which comes from another branch.
#[allow(dead_code)]
pub mod rego;

#[cfg(test)]
mod rego_tests;
