//! Policy evaluation that can take long never runs on an async worker, as in Kubewarden's
//! policy-server: a slow policy then delays its own request, not the relays and webhook
//! calls sharing the worker. Two ways off the worker:
//!
//! - a policy with threads of its own (CEL: big stacks, a time limit) hands back a future
//!   (`validate_detached`) that the request's task awaits: one hand-off each way, as
//!   before, and no thread waits;
//! - a synchronous policy that says `may_block` (an interpreter without threads of its
//!   own, Rego next) runs through `spawn_blocking`.
//!
//! At most [`MAX_BLOCKING`] such evaluations run at once; further ones wait for a permit
//! without holding a thread.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::policy::{Answer, Judgement, MutatingPolicy, Mutation, ValidatingPolicy};
use crate::review::AdmissionRequest;

/// Evaluations off the worker at once. CEL's own threads (32, abandoned ones included)
/// bound the work further; this keeps a burst of requests queueing here rather than
/// failing there.
pub const MAX_BLOCKING: usize = 16;

pub(crate) struct Blocking {
    permits: Arc<Semaphore>,
}

impl Blocking {
    pub fn new() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_BLOCKING)),
        }
    }

    /// `policy`'s judgement: awaited from its own threads, on the blocking pool, or inline
    /// when it is quick.
    pub async fn validate(
        &self,
        policy: &Arc<dyn ValidatingPolicy>,
        request: &AdmissionRequest,
        labels: &BTreeMap<String, String>,
    ) -> Judgement {
        if let Some(pending) = policy.validate_detached(request, labels) {
            return match self.permit().await {
                Ok(_permit) => pending.await,
                Err(e) => Answer::Error(e).into(),
            };
        }
        if !policy.may_block() {
            return policy.validate(request, labels);
        }
        let (policy, request, labels) = (policy.clone(), request.clone(), labels.clone());
        self.run(move || policy.validate(&request, &labels))
            .await
            .unwrap_or_else(|e| Answer::Error(e).into())
    }

    /// `policy`'s mutation, evaluated as [`Blocking::validate`] evaluates judgements.
    pub async fn mutate(
        &self,
        policy: &Arc<dyn MutatingPolicy>,
        request: &AdmissionRequest,
        labels: &BTreeMap<String, String>,
    ) -> Mutation {
        if let Some(pending) = policy.mutate_detached(request, labels) {
            return match self.permit().await {
                Ok(_permit) => pending.await,
                Err(e) => Mutation::Deny(e),
            };
        }
        if !policy.may_block() {
            return policy.mutate(request, labels);
        }
        let (policy, request, labels) = (policy.clone(), request.clone(), labels.clone());
        self.run(move || policy.mutate(&request, &labels))
            .await
            .unwrap_or_else(Mutation::Deny)
    }

    /// Runs `work` on the blocking pool once a permit is free. An evaluation that panics
    /// is an error (the request fails closed), not a crash of the door.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| format!("the policy evaluation did not finish: {e}"))
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, String> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| format!("the policy evaluation pool is closed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Operation;

    struct Slow(std::time::Duration);

    impl ValidatingPolicy for Slow {
        fn name(&self) -> &str {
            "slow"
        }
        fn validate(&self, _: &AdmissionRequest, _: &BTreeMap<String, String>) -> Judgement {
            std::thread::sleep(self.0);
            Answer::Allow.into()
        }
        fn may_block(&self) -> bool {
            true
        }
    }

    struct Panics;

    impl ValidatingPolicy for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        fn validate(&self, _: &AdmissionRequest, _: &BTreeMap<String, String>) -> Judgement {
            panic!("a bug in a policy")
        }
        fn may_block(&self) -> bool {
            true
        }
    }

    /// On a one-thread runtime, a blocking policy would stall every other task; off the
    /// worker, a timer set for a fraction of its run fires while it runs.
    #[tokio::test(flavor = "current_thread")]
    async fn a_slow_policy_does_not_hold_the_async_worker() {
        let pool = Blocking::new();
        let slow: Arc<dyn ValidatingPolicy> = Arc::new(Slow(std::time::Duration::from_millis(500)));
        let request = AdmissionRequest::pod(Operation::Create);
        let labels = BTreeMap::new();
        let judged = pool.validate(&slow, &request, &labels);
        let ticked = tokio::time::sleep(std::time::Duration::from_millis(50));
        tokio::select! {
            _ = ticked => {}
            _ = judged => panic!("the timer should fire first: the worker was held"),
        }
    }

    #[tokio::test]
    async fn a_panicking_policy_is_an_error_not_a_crash() {
        let pool = Blocking::new();
        let policy: Arc<dyn ValidatingPolicy> = Arc::new(Panics);
        let judged = pool
            .validate(
                &policy,
                &AdmissionRequest::pod(Operation::Create),
                &BTreeMap::new(),
            )
            .await;
        assert!(
            matches!(&judged.answer, Answer::Error(m) if m.contains("did not finish")),
            "{judged:?}"
        );
    }

    /// CEL runs on the policy set's own threads; the core awaits them. On a one-thread
    /// runtime a timer still fires while a slow policy is evaluated.
    #[tokio::test(flavor = "current_thread")]
    async fn cel_is_awaited_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let xs: Vec<String> = (0..100).map(|n| n.to_string()).collect();
        std::fs::write(
            dir.path().join("slow.yaml"),
            format!(
                r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: slow}}
spec:
  matchConstraints:
    resourceRules: [{{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]
  variables: [{{name: xs, expression: "[{}]"}}]
  validations: [{{expression: "variables.xs.all(a, variables.xs.all(b, variables.xs.all(c, a + b + c >= 0)))"}}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: slow}}
spec: {{policyName: slow, validationActions: [Deny]}}
"#,
                xs.join(", ")
            ),
        )
        .unwrap();
        let config = format!("policyDir: {}\n", dir.path().display());
        let config = crate::config::Config::parse(&config, std::path::Path::new("c.yaml")).unwrap();
        let policies = crate::policy::registry::build(&config).unwrap();
        let cel = policies.validating[0].clone();
        let mut request = AdmissionRequest::pod(Operation::Create);
        request.namespace = "default".into();
        request.object = Some(serde_json::json!({"metadata": {"name": "p"}, "spec": {}}));
        let pool = Blocking::new();
        let labels = BTreeMap::new();
        let judged = pool.validate(&cel, &request, &labels);
        let ticked = tokio::time::sleep(std::time::Duration::from_millis(50));
        tokio::select! {
            _ = ticked => {}
            judged = judged => panic!("the timer should fire first: the worker was held ({judged:?})"),
        }
    }
}
