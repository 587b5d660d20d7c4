//! In-process policies: pure checks the decision core runs before (and without) any
//! webhook. Each takes its validated settings and the admission object and returns what
//! is wrong, in words a user can act on; none does I/O.
//!
//! [`admission`] holds the traits every policy implements and [`registry`] the one list
//! of sources; each source implements the traits in its own module:
//!
//! - [`runtime_class`]: the `runtimeClass:` rule (mutating).
//! - [`pss`]: Pod Security Standards, by namespace labels.
//! - [`images`]: the `images:` rules (latest tags, registries, digests, deny patterns),
//!   with [`reference`](mod@reference) normalising image references as containerd does.
//! - [`vap`]: CEL ValidatingAdmissionPolicy and MutatingAdmissionPolicy from `policyDir`.

pub mod admission;
pub mod gatekeeper;
pub mod images;
pub(crate) mod matching;
pub mod pss;
pub mod reference;
pub mod registry;
pub mod runtime_class;
pub mod vap;

mod glob;

pub use admission::{Answer, Judgement, MutatingPolicy, Mutation, ValidatingPolicy};

/// `s` quoted for a message: escaped (`{:?}`), and cut to a readable length so a hostile
/// or broken value cannot blow up a denial message or a log line.
pub(crate) fn quote(s: &str) -> String {
    const MAX_CHARS: usize = 200;
    match s.char_indices().nth(MAX_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote("nginx"), "\"nginx\"");
        assert_eq!(quote("a\"b\nc"), "\"a\\\"b\\nc\"");
        let long = "é".repeat(1000);
        let q = quote(&long);
        assert!(q.ends_with('…'));
        assert_eq!(q.chars().filter(|&c| c == 'é').count(), 200);
    }
}
