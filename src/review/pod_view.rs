//! The Pod a request carries, for the policies that judge Pods (Pod Security, image rules,
//! runtime class, exemptions): a Pod itself, or the pod template of a workload —
//! Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController,
//! PodTemplate — so a bad image is refused when the Deployment is written, not only when
//! its ReplicaSet later fails to create Pods. CEL policies and webhooks see the request's
//! own object and choose their kinds with their match rules.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::review::AdmissionRequest;

pub struct PodView<'a> {
    /// A Pod object (`metadata`, `spec`).
    pub pod: Cow<'a, Value>,
    /// JSON pointer of the template in the request's object; empty for a Pod.
    pub pointer: &'static str,
}

impl PodView<'_> {
    /// A workload's template rather than a Pod. Pod Security only warns and audits
    /// templates, as upstream's `ValidatePodController`.
    pub fn is_template(&self) -> bool {
        !self.pointer.is_empty()
    }
}

/// Where the pod template is in an object of `group`/`kind`; `""` for a Pod.
pub fn template_pointer(group: &str, kind: &str) -> Option<&'static str> {
    Some(match (group, kind) {
        ("", "Pod") => "",
        ("", "PodTemplate") => "/template",
        ("", "ReplicationController")
        | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => "/spec/template",
        ("batch", "CronJob") => "/spec/jobTemplate/spec/template",
        _ => return None,
    })
}

/// The Pod of a create or update of a Pod-bearing kind. Subresources (exec, status,
/// scale...) carry no Pod to judge: it was judged when it was written.
pub fn pod_view(request: &AdmissionRequest) -> Option<PodView<'_>> {
    if request.sub_resource.is_some() {
        return None;
    }
    let pointer = template_pointer(&request.kind.group, &request.kind.kind)?;
    let object = request.object.as_ref()?;
    if pointer.is_empty() {
        return Some(PodView {
            pod: Cow::Borrowed(object),
            pointer,
        });
    }
    let template = object.pointer(pointer)?;
    let mut metadata = template
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if !request.namespace.is_empty() {
        metadata["namespace"] = json!(request.namespace);
    }
    Some(PodView {
        pod: Cow::Owned(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
        })),
        pointer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{GroupVersionKind, GroupVersionResource, Operation};

    fn request(group: &str, kind: &str, object: Value) -> AdmissionRequest {
        let mut r = AdmissionRequest::new(
            Operation::Create,
            GroupVersionKind {
                group: group.into(),
                version: "v1".into(),
                kind: kind.into(),
            },
            GroupVersionResource::core("x"),
            None,
        );
        r.namespace = "prod".into();
        r.object = Some(object);
        r
    }

    #[test]
    fn a_cronjob_template_is_seen_as_a_pod_in_the_request_namespace() {
        let cronjob = json!({"spec": {"jobTemplate": {"spec": {"template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}}});
        let r = request("batch", "CronJob", cronjob);
        let view = pod_view(&r).unwrap();
        assert!(view.is_template());
        assert_eq!(view.pointer, "/spec/jobTemplate/spec/template");
        assert_eq!(
            view.pod["metadata"],
            json!({"labels": {"app": "x"}, "namespace": "prod"})
        );
        assert_eq!(view.pod["spec"]["containers"][0]["image"], "busybox");
    }

    #[test]
    fn other_kinds_and_subresources_carry_no_pod() {
        assert!(pod_view(&request("", "ConfigMap", json!({}))).is_none());
        assert!(pod_view(&request("extensions", "Deployment", json!({}))).is_none());
        let mut exec = request("", "Pod", json!({}));
        exec.sub_resource = Some("exec".into());
        assert!(pod_view(&exec).is_none());
        let pod = request("", "Pod", json!({"spec": {}}));
        assert!(!pod_view(&pod).unwrap().is_template());
    }
}
