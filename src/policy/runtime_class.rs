//! The runtime-class rule (after Kubewarden's pod-runtime-class-policy, with the semantics
//! its README states): a reserved runtime is refused, or rewritten to the fallback; an
//! unset runtime is refused or given the fallback only when the default runtime counts as
//! reserved; an explicit runtime that is not reserved is left alone. (The upstream code
//! also rewrites or refuses that last case; we do not.)

use serde_json::Value;

use crate::config::RuntimeClassRule;

/// What the rule does with one Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// Set `spec.runtimeClassName` to this class.
    Set(String),
    Refuse(String),
}

// The settings, `is_active` and `validate` are in config::runtime_class; deciding is here.
impl RuntimeClassRule {
    /// Pure: the decision for a v1 Pod.
    pub fn decide(&self, pod: &Value) -> Decision {
        let class = pod
            .pointer("/spec/runtimeClassName")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty());
        let reserved = match class {
            Some(c) => self.reserved_runtimes.iter().any(|r| r == c),
            None => self.default_runtime_reserved,
        };
        if !reserved {
            return Decision::Keep;
        }
        match (&self.fallback_runtime, class) {
            (Some(fallback), _) => Decision::Set(fallback.clone()),
            (None, Some(c)) => Decision::Refuse(format!(
                "runtime class {c:?} is reserved (runtimeClass.reservedRuntimes); choose another runtime class"
            )),
            (None, None) => Decision::Refuse(
                "the default runtime is reserved (runtimeClass.defaultRuntimeReserved); set a runtime class".into(),
            ),
        }
    }
}

mod admission;
pub use admission::register;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use serde_json::json;

    fn pod(class: Option<&str>) -> Value {
        match class {
            Some(c) => json!({"spec": {"runtimeClassName": c, "containers": []}}),
            None => json!({"spec": {"containers": []}}),
        }
    }

    #[test]
    fn reserved_runtimes_are_rewritten_or_refused_and_others_left_alone() {
        let rule = RuntimeClassRule {
            reserved_runtimes: vec!["runc".into()],
            fallback_runtime: Some("kata".into()),
            default_runtime_reserved: true,
            mode: Mode::Enforce,
        };
        assert_eq!(
            rule.decide(&pod(Some("runc"))),
            Decision::Set("kata".into())
        );
        assert_eq!(rule.decide(&pod(None)), Decision::Set("kata".into()));
        assert_eq!(rule.decide(&pod(Some("gvisor"))), Decision::Keep);
        let strict = RuntimeClassRule {
            fallback_runtime: None,
            ..rule.clone()
        };
        assert!(
            matches!(strict.decide(&pod(Some("runc"))), Decision::Refuse(m) if m.contains("\"runc\" is reserved"))
        );
        assert!(matches!(strict.decide(&pod(None)), Decision::Refuse(_)));
        let lenient = RuntimeClassRule {
            default_runtime_reserved: false,
            ..rule.clone()
        };
        assert_eq!(lenient.decide(&pod(None)), Decision::Keep);
        let bad = RuntimeClassRule {
            fallback_runtime: Some("runc".into()),
            ..rule
        };
        assert!(bad.validate().unwrap_err().contains("itself reserved"));
    }
}
