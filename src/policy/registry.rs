//! Every in-process policy source, in one list. Adding a source is one module that
//! implements the [`admission`](super::admission) traits and one line in [`SOURCES`].

use std::sync::Arc;

use super::admission::{MutatingPolicy, ValidatingPolicy};
use crate::config::Config;

/// The policies a config asks for, by phase, each list in the order the core runs it.
#[derive(Default)]
pub struct Policies {
    /// The mutation phase's in-process part, before the mutating webhooks.
    pub mutating: Vec<Arc<dyn MutatingPolicy>>,
    /// The validation phase's in-process part, before the validating webhooks.
    pub validating: Vec<Arc<dyn ValidatingPolicy>>,
    /// The image rules alone, for an ImageReview (which asks about images only).
    pub images: Vec<Arc<dyn ValidatingPolicy>>,
}

/// Adds a source's policies (none when its config section is off). The error names the
/// config key or file, and the fix.
pub type Register = fn(&Config, &mut Policies) -> Result<(), String>;

/// In each phase, policies run in this order: the built-in rules first, as kube-apiserver
/// runs its in-tree plugins (RuntimeClass, PodSecurity) before the admission policies.
pub const SOURCES: [Register; 4] = [
    super::runtime_class::register,
    super::pss::register,
    super::images::register,
    super::vap::register,
];

/// Builds every policy the config asks for, compiling each once. The config has read
/// every file a policy needs (`policyDir`): policies do no I/O.
pub fn build(config: &Config) -> Result<Policies, String> {
    let mut policies = Policies::default();
    for register in SOURCES {
        register(config, &mut policies)?;
    }
    Ok(policies)
}
