//! ImageReview (`imagepolicy.k8s.io/v1alpha1`), what kube-apiserver's ImagePolicyWebhook
//! admission plugin sends: the images of a Pod, its namespace and its
//! `*.image-policy.k8s.io/*` annotations. It is decided by the image rules alone.
//!
//! Break-glass: an annotation `<anything>.image-policy.k8s.io/<anything>: break-glass` (the
//! convention of the Kubernetes documentation) counts as the configured `breakGlass.label`,
//! so it lets the images through when break-glass is enabled and the caller — the
//! kube-apiserver's client certificate — is one of `breakGlass.callers`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::review::{AdmissionRequest, Operation, Verdict};

const API_VERSION: &str = "imagepolicy.k8s.io/v1alpha1";
const KIND: &str = "ImageReview";
const ANNOTATION_DOMAIN: &str = ".image-policy.k8s.io/";
const BREAK_GLASS_VALUE: &str = "break-glass";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageReviewError {
    #[error("the body is not an ImageReview: {0}")]
    Json(String),
    #[error("apiVersion {0:?} is not {API_VERSION}")]
    ApiVersion(String),
    #[error("kind {0:?} is not {KIND}")]
    Kind(String),
    #[error("spec.containers is empty: there is no image to review")]
    NoImage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    spec: Spec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    namespace: String,
}

#[derive(Deserialize)]
struct Container {
    #[serde(default)]
    image: String,
}

/// Turns an ImageReview into the Pod request the image rules judge; `break_glass_label` is
/// `breakGlass.label`.
pub fn decode(body: &[u8], break_glass_label: &str) -> Result<AdmissionRequest, ImageReviewError> {
    let review: Review =
        serde_json::from_slice(body).map_err(|e| ImageReviewError::Json(e.to_string()))?;
    if review.api_version != API_VERSION {
        return Err(ImageReviewError::ApiVersion(review.api_version));
    }
    if review.kind != KIND {
        return Err(ImageReviewError::Kind(review.kind));
    }
    let spec = review.spec;
    if spec.containers.is_empty() {
        return Err(ImageReviewError::NoImage);
    }
    let containers: Vec<Value> = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"name": format!("container-{i}"), "image": c.image}))
        .collect();
    let broken = spec.annotations.iter().any(|(key, value)| {
        key.split_once('/')
            .is_some_and(|(prefix, _)| format!("{prefix}/").ends_with(ANNOTATION_DOMAIN))
            && value == BREAK_GLASS_VALUE
    });
    let labels = if broken {
        json!({ break_glass_label: "true" })
    } else {
        json!({})
    };
    let mut request = AdmissionRequest::pod(Operation::Create);
    request.namespace = spec.namespace.clone();
    request.object = Some(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": spec.namespace, "annotations": spec.annotations, "labels": labels},
        "spec": {"containers": containers},
    }));
    Ok(request)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    allowed: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<String, String>,
}

/// The answering ImageReview: `status.allowed`, the refusal as `reason`, audit annotations.
pub fn encode(verdict: &Verdict) -> Vec<u8> {
    let status = Status {
        allowed: verdict.is_allowed(),
        reason: if verdict.is_allowed() {
            ""
        } else {
            verdict.message()
        },
        audit_annotations: &verdict.audit_annotations,
    };
    let review = json!({"apiVersion": API_VERSION, "kind": KIND, "status": status});
    serde_json::to_vec(&review).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Kubernetes documentation (ImagePolicyWebhook).
    const DOC_EXAMPLE: &str = r#"{
      "apiVersion": "imagepolicy.k8s.io/v1alpha1",
      "kind": "ImageReview",
      "spec": {
        "containers": [{"image": "myrepo/myimage:v1"}, {"image": "myrepo/myimage@sha256:beb6bd6a68f114c1dc2ea4b28db81bdf91de202a9014972bec5e4d9171d90ed"}],
        "annotations": {"mycluster.image-policy.k8s.io/ticket-1234": "break-glass"},
        "namespace": "mynamespace"
      }
    }"#;

    #[test]
    fn the_documented_review_becomes_a_pod_with_its_images_and_break_glass() {
        let request = decode(DOC_EXAMPLE.as_bytes(), "portcullis.dev/break-glass").unwrap();
        let pod = request.object.unwrap();
        assert_eq!(request.namespace, "mynamespace");
        assert_eq!(pod["spec"]["containers"][0]["image"], "myrepo/myimage:v1");
        assert_eq!(pod["spec"]["containers"][1]["name"], "container-1");
        assert_eq!(
            pod["metadata"]["labels"]["portcullis.dev/break-glass"],
            "true"
        );
        assert_eq!(
            pod["metadata"]["annotations"]["mycluster.image-policy.k8s.io/ticket-1234"],
            "break-glass"
        );
    }

    #[test]
    fn other_annotations_do_not_break_the_glass_and_bad_reviews_are_refused() {
        let review = DOC_EXAMPLE.replace("mycluster.image-policy.k8s.io", "example.com");
        let pod = decode(review.as_bytes(), "b").unwrap().object.unwrap();
        assert_eq!(pod["metadata"]["labels"], json!({}));
        let wrong = DOC_EXAMPLE.replace("v1alpha1", "v1");
        assert!(matches!(
            decode(wrong.as_bytes(), "b"),
            Err(ImageReviewError::ApiVersion(_))
        ));
        let empty =
            r#"{"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview", "spec": {}}"#;
        assert_eq!(
            decode(empty.as_bytes(), "b"),
            Err(ImageReviewError::NoImage)
        );
        assert!(matches!(decode(b"[]", "b"), Err(ImageReviewError::Json(_))));
    }

    #[test]
    fn a_refusal_is_the_reason_and_an_admission_has_none() {
        let denied = Verdict::refused(
            crate::review::Refusal::Denied,
            crate::review::Status {
                message: "policy \"images\" denied the request: x".into(),
                ..Default::default()
            },
        );
        let v: Value = serde_json::from_slice(&encode(&denied)).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": API_VERSION, "kind": KIND,
                   "status": {"allowed": false, "reason": "policy \"images\" denied the request: x"}})
        );
        let v: Value = serde_json::from_slice(&encode(&Verdict::allowed(None))).unwrap();
        assert_eq!(v["status"], json!({"allowed": true}));
    }
}
