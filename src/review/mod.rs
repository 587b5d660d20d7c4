//! The one admission model every door speaks: a Kubernetes `admission.k8s.io/v1`
//! `AdmissionRequest` in, one [`Verdict`] out.
//!
//! Field names and JSON shapes follow the upstream types
//! (k8s.io/api/admission/v1/types.go) so the request can be sent to webhooks as is.

mod build;
mod door;
pub(crate) mod pod_view;
pub(crate) mod shape;
pub(crate) mod wire;

pub use door::Door;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `metav1.GroupVersionKind` as admission uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GroupVersionKind {
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// `metav1.GroupVersionResource` as admission uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GroupVersionResource {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl GroupVersionKind {
    pub fn core(kind: &str) -> Self {
        Self {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
        }
    }
}

impl GroupVersionResource {
    pub fn core(resource: &str) -> Self {
        Self {
            group: String::new(),
            version: "v1".into(),
            resource: resource.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// `authenticationv1.UserInfo`: who asked. At the runtime doors this is the peer of the
/// unix socket (SO_PEERCRED), resolved through the system user and group databases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

/// `admissionv1.AdmissionRequest`, field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_kind: Option<GroupVersionKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_resource: Option<GroupVersionResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sub_resource: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub operation: Operation,
    pub user_info: UserInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_object: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
    /// What the door found the runtime holds for each container's image, by container
    /// name: the manifest digest, for the signature check ("images already on the node").
    /// Never on the wire: Kubernetes has no such field, and a caller must not be able to
    /// name a digest other than the one the runtime holds.
    #[serde(skip)]
    pub image_digests: BTreeMap<String, String>,
    /// The signature check's report on each container's image, by container name, for the
    /// policies after it (CEL: the variable `imageVerification`). Set by the core, never on
    /// the wire.
    #[serde(skip)]
    pub image_verification: BTreeMap<String, Value>,
}

impl AdmissionRequest {
    /// A request for `resource` (with optional subresource) of `kind`, with a fresh uid.
    pub fn new(
        operation: Operation,
        kind: GroupVersionKind,
        resource: GroupVersionResource,
        sub_resource: Option<&str>,
    ) -> Self {
        Self {
            uid: uuid::Uuid::new_v4().to_string(),
            request_kind: Some(kind.clone()),
            request_resource: Some(resource.clone()),
            request_sub_resource: sub_resource.map(str::to_owned),
            kind,
            resource,
            sub_resource: sub_resource.map(str::to_owned),
            name: String::new(),
            namespace: String::new(),
            operation,
            user_info: UserInfo::default(),
            object: None,
            old_object: None,
            dry_run: Some(false),
            options: None,
            image_digests: BTreeMap::new(),
            image_verification: BTreeMap::new(),
        }
    }
}

/// `metav1.Status` as far as admission answers carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
}

/// Why a request was refused: a policy said no, or a policy could not be asked and
/// fails closed. Doors map the two to different protocol codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Refusal {
    Denied,
    Failed,
}

/// What the chain decided. One enum, so that an allowed verdict with a refusal status (or
/// a refused one with a patch) cannot be built.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let through; `mutated` is the object after every mutation, when any changed it.
    Allowed { mutated: Option<Value> },
    /// Refused, with the user-facing status (message in kube-apiserver wording).
    Refused { refusal: Refusal, status: Status },
}

/// The decision core's one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
    /// What each policy source said, in order, for logs.
    pub trail: Vec<PolicyResult>,
}

impl Default for Verdict {
    /// Allowed, unchanged, with nothing said.
    fn default() -> Self {
        Self {
            decision: Decision::Allowed { mutated: None },
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
            trail: Vec::new(),
        }
    }
}

/// One policy's part in a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyResult {
    pub policy: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Allowed,
    Mutated,
    Denied,
    /// The policy could not be evaluated; `failurePolicy: Ignore` let the request on.
    Ignored,
    /// The policy could not be evaluated and failed closed.
    Failed,
    Skipped,
}

impl Verdict {
    /// Allowed, with the object as mutated (`None`: unchanged), nothing else said.
    pub fn allowed(mutated: Option<Value>) -> Self {
        Self {
            decision: Decision::Allowed { mutated },
            ..Self::default()
        }
    }

    /// Refused, nothing else said.
    pub fn refused(refusal: Refusal, status: Status) -> Self {
        Self {
            decision: Decision::Refused { refusal, status },
            ..Self::default()
        }
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self.decision, Decision::Allowed { .. })
    }

    /// The object after every mutation, when an allowed request was changed.
    pub fn mutated(&self) -> Option<&Value> {
        match &self.decision {
            Decision::Allowed { mutated } => mutated.as_ref(),
            Decision::Refused { .. } => None,
        }
    }

    pub fn refusal(&self) -> Option<Refusal> {
        match &self.decision {
            Decision::Refused { refusal, .. } => Some(*refusal),
            Decision::Allowed { .. } => None,
        }
    }

    /// The refusal's status; `None` when allowed.
    pub fn status(&self) -> Option<&Status> {
        match &self.decision {
            Decision::Refused { status, .. } => Some(status),
            Decision::Allowed { .. } => None,
        }
    }

    /// The refusal's message; empty when allowed.
    pub fn message(&self) -> &str {
        self.status().map(|s| s.message.as_str()).unwrap_or("")
    }
}
