//! Running a request through the compiled policies: which bindings apply (here, on the
//! caller's thread: matching is cheap), their CEL on the pool's big-stack threads for at
//! most the time limit, and the outputs folded into one answer.
//!
//! Each entry point comes twice: blocking (`evaluate`, `mutate`: for `check`, tests and
//! the synchronous policy traits) and async (`evaluate_async`, `mutate_async`: the core,
//! which must not hold an async worker while CEL runs). Only the wait differs.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use super::pool::{self, Job};
use super::{matching, mutate, route, tasks, truncate, Evaluation, Mutated, Output, PolicySet};
use super::{Task, VALIDATION_FAILURE_ANNOTATION};
use crate::review::AdmissionRequest;

/// What a pool job gives back: one slot per task, `None` for one not done in time.
type Slots<T> = Result<Vec<Option<T>>, String>;

impl PolicySet {
    /// Evaluates every binding that applies to `request`. `namespace` is the request's
    /// Namespace object (its labels serve `namespaceSelector`; it is `namespaceObject`),
    /// or null for cluster-scoped requests.
    pub fn evaluate(&self, request: &AdmissionRequest, namespace: &Value) -> Evaluation {
        let (mut evaluation, tasks) = self.plan(request, namespace);
        if !tasks.is_empty() {
            let work = self.validation_work(request, namespace, &tasks);
            let slots = self.pool.run(tasks.len(), work, self.deadline());
            self.fold(&mut evaluation, &tasks, self.outputs(slots, tasks.len()));
        }
        evaluation
    }

    /// [`evaluate`](Self::evaluate), awaiting the CEL threads instead of blocking on them.
    pub async fn evaluate_async(
        &self,
        request: &AdmissionRequest,
        namespace: &Value,
    ) -> Evaluation {
        let (mut evaluation, tasks) = self.plan(request, namespace);
        if !tasks.is_empty() {
            let work = self.validation_work(request, namespace, &tasks);
            let slots = self
                .pool
                .run_async(tasks.len(), work, self.deadline())
                .await;
            self.fold(&mut evaluation, &tasks, self.outputs(slots, tasks.len()));
        }
        evaluation
    }

    /// Runs every MutatingAdmissionPolicy binding that applies to `request`, in order
    /// (policies in file order, then their bindings), each on the object as the ones
    /// before left it. `namespace` is as for [`evaluate`](Self::evaluate).
    pub fn mutate(&self, request: &AdmissionRequest, namespace: &Value) -> Mutated {
        let (mut mutated, invocations) = self.plan_mutations(request, namespace);
        if !invocations.is_empty() {
            let work = self.mutation_work(request, namespace, &invocations);
            let slots = self.pool.run(invocations.len(), work, self.deadline());
            self.fold_mutations(&mut mutated, &invocations, slots);
        }
        mutated
    }

    /// [`mutate`](Self::mutate), awaiting the CEL threads instead of blocking on them.
    pub async fn mutate_async(&self, request: &AdmissionRequest, namespace: &Value) -> Mutated {
        let (mut mutated, invocations) = self.plan_mutations(request, namespace);
        if !invocations.is_empty() {
            let work = self.mutation_work(request, namespace, &invocations);
            let slots = self
                .pool
                .run_async(invocations.len(), work, self.deadline())
                .await;
            self.fold_mutations(&mut mutated, &invocations, slots);
        }
        mutated
    }

    pub(super) fn deadline(&self) -> Instant {
        Instant::now() + self.time_limit
    }

    fn timed_out(&self) -> String {
        format!(
            "CEL evaluation exceeded the time limit of {} ms",
            self.time_limit.as_millis()
        )
    }

    /// The validating bindings that apply, and the refusals of those that cannot run.
    fn plan(&self, request: &AdmissionRequest, namespace: &Value) -> (Evaluation, Vec<Task>) {
        let loaded = &self.loaded;
        let mut evaluation = Evaluation::default();
        let (tasks, unconfigured) = tasks(
            &loaded.policies,
            &loaded.bindings,
            &loaded.params,
            request,
            namespace,
            &mut evaluation.applied,
        );
        for (policy, binding, message) in unconfigured {
            super::refuse(&mut evaluation, policy, binding, &message);
        }
        (evaluation, tasks)
    }

    /// The pool job evaluating `tasks`.
    pub(super) fn validation_work(
        &self,
        request: &AdmissionRequest,
        namespace: &Value,
        tasks: &[Task],
    ) -> impl FnOnce(&cel::Context<'static>, &dyn Fn(usize, Output) -> bool) + Send + 'static {
        let job = Job {
            request: request.clone(),
            namespace_object: self.namespace_object(request, namespace),
            work: tasks.to_vec(),
        };
        let loaded = self.loaded.clone();
        move |root: &cel::Context, send: &dyn Fn(usize, Output) -> bool| {
            pool::work_on(&loaded, root, &job, send)
        }
    }

    /// Every task's output: a task that did not finish in time, or could not run, gets
    /// an error.
    pub(super) fn outputs(&self, slots: Slots<Output>, n: usize) -> Vec<Output> {
        match slots {
            Ok(outputs) => outputs
                .into_iter()
                .map(|o| o.unwrap_or_else(|| pool::failed(self.timed_out())))
                .collect(),
            Err(e) => (0..n).map(|_| pool::failed(e.clone())).collect(),
        }
    }

    /// Routes every output's decisions and gathers its audit annotations.
    fn fold(&self, evaluation: &mut Evaluation, tasks: &[Task], outputs: Vec<Output>) {
        let loaded = &self.loaded;
        let mut annotations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut failures = Vec::new();
        for (task, output) in tasks.iter().zip(&outputs) {
            let binding = &loaded.bindings[task.0];
            let policy = &loaded.policies[binding.policy];
            route(evaluation, &mut failures, policy, binding, output);
            for (key, value) in &output.annotations {
                let values = annotations
                    .entry(format!("{}/{key}", policy.name))
                    .or_default();
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
        }
        for (key, values) in annotations {
            evaluation
                .audit_annotations
                .insert(key, truncate(values.join(", ")));
        }
        if !failures.is_empty() {
            let json = serde_json::to_string(&failures).unwrap_or_default();
            evaluation
                .audit_annotations
                .insert(VALIDATION_FAILURE_ANNOTATION.into(), truncate(json));
        }
    }

    /// The mutating bindings that apply, and the failures of those that cannot run.
    fn plan_mutations(
        &self,
        request: &AdmissionRequest,
        namespace: &Value,
    ) -> (Mutated, Vec<Task>) {
        let loaded = &self.loaded;
        let mut mutated = Mutated::default();
        let (invocations, unconfigured) = tasks(
            &loaded.mutating,
            &loaded.mutating_bindings,
            &loaded.params,
            request,
            namespace,
            &mut mutated.applied,
        );
        for (policy, binding, message) in unconfigured {
            mutated.fail(policy, binding, &message);
        }
        (mutated, invocations)
    }

    /// The pool job applying `invocations` one after another.
    fn mutation_work(
        &self,
        request: &AdmissionRequest,
        namespace: &Value,
        invocations: &[Task],
    ) -> impl FnOnce(&cel::Context<'static>, &dyn Fn(usize, mutate::Invoked) -> bool) + Send + 'static
    {
        let job = mutate::MutationJob {
            request: request.clone(),
            namespace_object: self.namespace_object(request, namespace),
            invocations: invocations.to_vec(),
        };
        let loaded = self.loaded.clone();
        move |root: &cel::Context, send: &dyn Fn(usize, mutate::Invoked) -> bool| {
            mutate::work_on(&loaded, root, &job, send)
        }
    }

    /// Each invocation's errors and the object the last one left.
    fn fold_mutations(
        &self,
        mutated: &mut Mutated,
        invocations: &[Task],
        slots: Slots<mutate::Invoked>,
    ) {
        let outputs = match slots {
            Ok(outputs) => outputs,
            Err(e) => invocations
                .iter()
                .map(|_| Some(mutate::Invoked::failed(e.clone())))
                .collect(),
        };
        for ((bi, _), output) in invocations.iter().zip(outputs) {
            let binding = &self.loaded.mutating_bindings[*bi];
            let policy = &self.loaded.mutating[binding.policy];
            let output = output.unwrap_or_else(|| mutate::Invoked::failed(self.timed_out()));
            for error in &output.errors {
                mutated.fail(policy, binding, error);
            }
            if output.object.is_some() {
                mutated.object = output.object;
            }
        }
    }

    /// The `namespaceObject` variable: null for cluster-scoped requests and Namespaces.
    fn namespace_object(&self, request: &AdmissionRequest, namespace: &Value) -> Value {
        if request.namespace.is_empty() || matching::is_namespace(request) {
            Value::Null
        } else {
            namespace.clone()
        }
    }
}
