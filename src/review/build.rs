//! How doors build requests: one set of constructors, so a Pod reaches the policies in the
//! same shape whichever door saw it.
//!
//! The door itself is not part of the request: webhooks receive the request exactly as
//! kube-apiserver would send it, and the door travels beside it ([`Door`](super::Door),
//! given to the core's `admit`).

use serde_json::Value;

use super::{AdmissionRequest, GroupVersionKind, GroupVersionResource, Operation, UserInfo};

impl AdmissionRequest {
    /// A request about a Pod (`v1 pods`), with a fresh uid.
    pub fn pod(operation: Operation) -> Self {
        Self::new(
            operation,
            GroupVersionKind::core("Pod"),
            GroupVersionResource::core("pods"),
            None,
        )
    }

    /// A Pod `operation` on `pod` asked by `user`; name and namespace are the Pod's.
    pub fn for_pod(operation: Operation, pod: Value, user: UserInfo) -> Self {
        let meta = |k: &str| pod["metadata"][k].as_str().unwrap_or_default().to_owned();
        let (namespace, name) = (meta("namespace"), meta("name"));
        Self::pod(operation)
            .named(&namespace, &name)
            .by(user)
            .with_object(pod)
    }

    /// The Pod an image pull is judged as (by the image rules, [`Scope::Images`]): the
    /// image as its one container, named `pull` (there is no container yet), in
    /// `namespace` under the pod name `name` when the puller says whose pull it is (the
    /// kubelet's `sandbox_config`), empty when no one does (`crictl pull`, containerd's
    /// image verifier).
    ///
    /// [`Scope::Images`]: crate::core::Scope::Images
    pub fn for_pull(image: &str, namespace: &str, name: &str, user: UserInfo) -> Self {
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "pull", "image": image}]},
        });
        Self::for_pod(Operation::Create, pod, user)
    }

    /// A request about `object` of the kind its `apiVersion` and `kind` say (the resource
    /// named as Kubernetes names it), in the namespace of its metadata.
    pub fn for_object(operation: Operation, object: Value) -> Self {
        let (group, version) = match object["apiVersion"].as_str().unwrap_or("v1") {
            api if api.contains('/') => api.split_once('/').unwrap_or(("", api)),
            api => ("", api),
        };
        let kind = GroupVersionKind {
            group: group.into(),
            version: version.into(),
            kind: object["kind"].as_str().unwrap_or_default().into(),
        };
        let resource = GroupVersionResource {
            group: kind.group.clone(),
            version: kind.version.clone(),
            resource: plural(&kind.kind),
        };
        let meta = |k: &str| {
            object["metadata"][k]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let (namespace, name) = (meta("namespace"), meta("name"));
        Self::new(operation, kind, resource, None)
            .named(&namespace, &name)
            .with_object(object)
    }

    /// The same request about `name` in `namespace`.
    pub fn named(mut self, namespace: &str, name: &str) -> Self {
        self.namespace = namespace.to_owned();
        self.name = name.to_owned();
        self
    }

    /// The same request, asked by `user`.
    pub fn by(mut self, user: UserInfo) -> Self {
        self.user_info = user;
        self
    }

    pub fn with_object(mut self, object: Value) -> Self {
        self.object = Some(object);
        self
    }

    /// The same request on `subresource` of the object (`exec`, `resize`, …).
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.sub_resource = Some(subresource.to_owned());
        self
    }

    /// The same request with the object as it was (an UPDATE's `oldObject`).
    pub fn with_old_object(mut self, old: Option<Value>) -> Self {
        self.old_object = old;
        self
    }
}

/// The resource name of a kind as Kubernetes forms it for nearly every built-in type
/// (without discovery there is no other source): lower case, plural.
fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.is_empty() {
        lower
    } else if lower.ends_with('s') || lower.ends_with('x') || lower.ends_with("ch") {
        format!("{lower}es")
    } else if let Some(stem) = lower
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u']))
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_become_the_resources_kubernetes_names() {
        for (kind, resource) in [
            ("Pod", "pods"),
            ("Deployment", "deployments"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Gateway", "gateways"),
            ("", ""),
        ] {
            assert_eq!(plural(kind), resource);
        }
    }

    #[test]
    fn a_pod_request_takes_name_and_namespace_from_the_pod() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {}});
        let user = UserInfo {
            username: "alice".into(),
            ..Default::default()
        };
        let r = AdmissionRequest::for_pod(Operation::Create, pod.clone(), user.clone());
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("ns", "p"));
        assert_eq!(
            (r.kind.kind.as_str(), r.resource.resource.as_str()),
            ("Pod", "pods")
        );
        assert_eq!((r.user_info, r.object), (user, Some(pod)));
    }

    #[test]
    fn an_object_request_takes_its_group_version_and_kind() {
        let r = AdmissionRequest::for_object(
            Operation::Update,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}}),
        );
        assert_eq!(
            (
                r.kind.group.as_str(),
                r.kind.version.as_str(),
                r.resource.resource.as_str()
            ),
            ("apps", "v1", "deployments")
        );
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("prod", "web"));
        let core = AdmissionRequest::for_object(Operation::Create, json!({"kind": "Pod"}));
        assert_eq!(
            (core.kind.group.as_str(), core.kind.version.as_str()),
            ("", "v1")
        );
    }
}
