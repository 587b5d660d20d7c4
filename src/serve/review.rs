//! AdmissionReview (`admission.k8s.io/v1` and `v1beta1`) as a webhook server speaks it:
//! the request kube-apiserver sends, and the response it requires — the uid echoed,
//! `allowed`, a `status` on refusal, a base64 JSON Patch only from `/mutate`, warnings and
//! audit annotations — in the version it asked in.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::review::wire::ReviewVersion;
use crate::review::{AdmissionRequest, Status, Verdict};

/// Why a body is not an AdmissionReview we can answer (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReviewError {
    #[error("the body is not JSON: {0}")]
    Json(String),
    #[error("apiVersion {0:?} is not admission.k8s.io/v1 or admission.k8s.io/v1beta1")]
    ApiVersion(String),
    #[error("kind {0:?} is not AdmissionReview")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("request: {0}")]
    Request(String),
    #[error("request.uid is empty; kube-apiserver always sets it")]
    NoUid,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    request: Option<Value>,
}

/// Reads an AdmissionReview: the version it speaks and its request.
pub fn decode(body: &[u8]) -> Result<(ReviewVersion, AdmissionRequest), ReviewError> {
    let incoming: Incoming =
        serde_json::from_slice(body).map_err(|e| ReviewError::Json(e.to_string()))?;
    let version = match incoming.api_version.as_str() {
        "admission.k8s.io/v1" => ReviewVersion::V1,
        "admission.k8s.io/v1beta1" => ReviewVersion::V1beta1,
        other => return Err(ReviewError::ApiVersion(other.to_owned())),
    };
    if incoming.kind != "AdmissionReview" {
        return Err(ReviewError::Kind(incoming.kind));
    }
    let request = incoming.request.ok_or(ReviewError::NoRequest)?;
    let request: AdmissionRequest =
        serde_json::from_value(request).map_err(|e| ReviewError::Request(e.to_string()))?;
    if request.uid.is_empty() {
        return Err(ReviewError::NoUid);
    }
    Ok((version, request))
}

/// `admissionv1.AdmissionResponse`, as we send it.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

/// The response to `request`, given `verdict`. `with_patch`: `/mutate` sends the change as
/// a JSON Patch; `/validate` never does.
pub fn response(request: &AdmissionRequest, verdict: &Verdict, with_patch: bool) -> Response {
    let patch = match (with_patch, &request.object, verdict.mutated()) {
        (true, Some(before), Some(after)) => {
            let patch = json_patch::diff(before, after);
            (!patch.0.is_empty()).then(|| {
                let bytes = serde_json::to_vec(&patch).unwrap_or_default();
                base64::engine::general_purpose::STANDARD.encode(bytes)
            })
        }
        _ => None,
    };
    Response {
        uid: request.uid.clone(),
        allowed: verdict.is_allowed(),
        status: (!verdict.is_allowed()).then(|| verdict.status().cloned().unwrap_or_default()),
        patch_type: patch.as_ref().map(|_| "JSONPatch"),
        patch,
        warnings: verdict.warnings.clone(),
        audit_annotations: verdict.audit_annotations.clone(),
    }
}

/// The whole AdmissionReview answering in `version`.
pub fn encode(version: ReviewVersion, response: &Response) -> Vec<u8> {
    let review = serde_json::json!({
        "apiVersion": version.api_version(),
        "kind": "AdmissionReview",
        "response": response,
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::{Operation, Refusal};
    use serde_json::json;

    /// What kube-apiserver 1.30 sent for `kubectl run nginx --image=nginx` (trimmed).
    fn apiserver_review(api_version: &str) -> Value {
        json!({
            "kind": "AdmissionReview",
            "apiVersion": api_version,
            "request": {
                "uid": "b2b6a5b6-0e2f-4a4e-9a7f-3c1e6b6f2f11",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "name": "nginx",
                "namespace": "default",
                "operation": "CREATE",
                "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
                "object": {"kind": "Pod", "apiVersion": "v1",
                    "metadata": {"name": "nginx", "namespace": "default", "labels": {"run": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}},
                "oldObject": null,
                "dryRun": false,
                "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-run"}
            }
        })
    }

    #[test]
    fn reads_what_kube_apiserver_sends_in_both_versions() {
        for (api, version) in [
            ("admission.k8s.io/v1", ReviewVersion::V1),
            ("admission.k8s.io/v1beta1", ReviewVersion::V1beta1),
        ] {
            let body = serde_json::to_vec(&apiserver_review(api)).unwrap();
            let (v, request) = decode(&body).unwrap();
            assert_eq!(v, version);
            assert_eq!(request.operation, Operation::Create);
            assert_eq!(request.user_info.username, "kubernetes-admin");
            assert_eq!(
                request.object.unwrap()["spec"]["containers"][0]["image"],
                "nginx"
            );
            assert_eq!(request.old_object, None);
        }
    }

    #[test]
    fn bad_reviews_say_what_is_wrong() {
        let mut review = apiserver_review("admission.k8s.io/v1");
        assert!(matches!(decode(b"{"), Err(ReviewError::Json(_))));
        review["apiVersion"] = json!("admission.k8s.io/v2");
        assert!(matches!(
            decode(&serde_json::to_vec(&review).unwrap()),
            Err(ReviewError::ApiVersion(_))
        ));
        review["apiVersion"] = json!("admission.k8s.io/v1");
        review["request"]["operation"] = json!("PATCH");
        let e = decode(&serde_json::to_vec(&review).unwrap()).unwrap_err();
        assert!(e.to_string().contains("PATCH"), "{e}");
        review["request"]["operation"] = json!("CREATE");
        review["request"]["uid"] = json!("");
        assert_eq!(
            decode(&serde_json::to_vec(&review).unwrap()),
            Err(ReviewError::NoUid)
        );
        review.as_object_mut().unwrap().remove("request");
        assert_eq!(
            decode(&serde_json::to_vec(&review).unwrap()),
            Err(ReviewError::NoRequest)
        );
    }

    #[test]
    fn a_refusal_carries_status_and_a_mutation_a_base64_patch_only_when_asked() {
        let body = serde_json::to_vec(&apiserver_review("admission.k8s.io/v1beta1")).unwrap();
        let (version, request) = decode(&body).unwrap();
        let mut mutated = request.object.clone().unwrap();
        mutated["spec"]["runtimeClassName"] = json!("kata");
        let verdict = Verdict {
            warnings: vec!["w".into()],
            ..Verdict::allowed(Some(mutated))
        };
        let answer: Value =
            serde_json::from_slice(&encode(version, &response(&request, &verdict, true))).unwrap();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(answer["response"]["uid"], request.uid);
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let patch = base64::engine::general_purpose::STANDARD
            .decode(answer["response"]["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&patch).unwrap(),
            json!([{"op": "add", "path": "/spec/runtimeClassName", "value": "kata"}])
        );
        assert_eq!(answer["response"]["warnings"], json!(["w"]));
        let validated = response(&request, &verdict, false);
        assert!(validated.patch.is_none() && validated.patch_type.is_none());

        let denied = Verdict::refused(
            Refusal::Denied,
            Status {
                code: Some(403),
                message: "no".into(),
                reason: "Forbidden".into(),
                status: "Failure".into(),
            },
        );
        let answer = serde_json::to_value(response(&request, &denied, true)).unwrap();
        assert_eq!(
            answer,
            json!({"uid": request.uid, "allowed": false,
                   "status": {"code": 403, "message": "no", "reason": "Forbidden", "status": "Failure"}})
        );
    }
}
