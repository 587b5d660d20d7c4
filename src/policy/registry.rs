//! Every in-process policy source, in one list. Adding a source is one module that
//! implements the [`admission`](super::admission) traits and one line in [`SOURCES`].

use super::admission::Policies;
use crate::config::Config;

/// Adds a source's policies (none when its config section is off). The error names the
/// config key or file, and the fix.
pub type Register = fn(&Config, &mut Policies) -> Result<(), String>;

/// In each phase, policies run in this order: the built-in rules first, as kube-apiserver
/// runs its in-tree plugins (RuntimeClass, PodSecurity) before the admission policies.
pub const SOURCES: [Register; 5] = [
    super::runtime_class::register,
    super::pss::register,
    super::images::register,
    super::vap::register,
    super::gatekeeper::register,
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
