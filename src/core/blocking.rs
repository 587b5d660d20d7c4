//! Policy evaluation that can take long (CEL and, next, Rego interpreters run to a time
//! limit, not to a bounded cost) moves off the async workers, as Kubewarden's
//! policy-server does: a slow policy then delays its own request, not the relays and
//! webhook calls sharing the worker. At most [`MAX_BLOCKING`] run at once; further ones
//! wait for a permit without holding a thread.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::policy::{Answer, Judgement, MutatingPolicy, Mutation, ValidatingPolicy};
use crate::review::AdmissionRequest;

/// Evaluations on the blocking pool at once. CEL's own worker threads (32) bound the work
/// further; this keeps a burst of requests from queueing hundreds of threads on them.
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

    /// `policy`'s judgement, evaluated where its [`ValidatingPolicy::may_block`] says.
    pub async fn validate(
        &self,
        policy: &Arc<dyn ValidatingPolicy>,
        request: &AdmissionRequest,
        labels: &BTreeMap<String, String>,
    ) -> Judgement {
        if !policy.may_block() {
            return policy.validate(request, labels);
        }
        let (policy, request, labels) = (policy.clone(), request.clone(), labels.clone());
        self.run(move || policy.validate(&request, &labels))
            .await
            .unwrap_or_else(|e| Answer::Error(e).into())
    }

    /// `policy`'s mutation, evaluated where its [`MutatingPolicy::may_block`] says.
    pub async fn mutate(
        &self,
        policy: &Arc<dyn MutatingPolicy>,
        request: &AdmissionRequest,
        labels: &BTreeMap<String, String>,
    ) -> Mutation {
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
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| format!("the policy evaluation pool is closed: {e}"))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| format!("the policy evaluation did not finish: {e}"))
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
}
