//! AdmissionReview v1/v1beta1 on the wire, as kube-apiserver sends it to webhooks and
//! reads their answers.
//!
//! Requests are our [`AdmissionRequest`] wrapped in an `AdmissionReview`. Responses are
//! read with our own lenient types (Go webhooks omit `status` on allowed answers, other
//! languages send `null`s), then checked like kube-apiserver's `VerifyAdmissionResponse`
//! (k8s.io/apiserver/pkg/admission/plugin/webhook/request/admissionreview.go) and the
//! patch handling of its mutating dispatcher: the result is a [`WebhookAnswer`] the
//! decision core can trust, or a [`ResponseError`] saying what the webhook did wrong.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{AdmissionRequest, Status};

const KIND: &str = "AdmissionReview";
const JSON_PATCH: &str = "JSONPatch";

/// The AdmissionReview version spoken with one webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewVersion {
    V1,
    V1beta1,
}

impl ReviewVersion {
    /// The first version in a webhook's `admissionReviewVersions` we can speak, as
    /// kube-apiserver picks it.
    pub fn choose<'a>(versions: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        versions.into_iter().find_map(|v| match v {
            "v1" => Some(Self::V1),
            "v1beta1" => Some(Self::V1beta1),
            _ => None,
        })
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Self::V1 => "admission.k8s.io/v1",
            Self::V1beta1 => "admission.k8s.io/v1beta1",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    request: &'a AdmissionRequest,
}

/// The JSON body to POST to a webhook. The v1beta1 request has the same fields as v1.
pub fn encode_review(
    request: &AdmissionRequest,
    version: ReviewVersion,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ReviewOut {
        api_version: version.api_version(),
        kind: KIND,
        request,
    })
}

/// `AdmissionReview` as a webhook answers it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    response: Option<ResponseIn>,
}

/// `admissionv1.AdmissionResponse`, every field optional.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResponseIn {
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    allowed: Option<bool>,
    #[serde(default)]
    status: Option<StatusIn>,
    /// Base64 (Go `[]byte`).
    #[serde(default)]
    patch: Option<String>,
    #[serde(default)]
    patch_type: Option<String>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
    #[serde(default)]
    audit_annotations: Option<BTreeMap<String, String>>,
}

/// `metav1.Status`, the parts admission uses; other fields (`metadata`, `details`) are
/// ignored.
#[derive(Debug, Deserialize)]
struct StatusIn {
    #[serde(default)]
    code: Option<i32>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl From<StatusIn> for Status {
    fn from(s: StatusIn) -> Self {
        Status {
            code: s.code.filter(|c| *c != 0),
            message: s.message.unwrap_or_default(),
            reason: s.reason.unwrap_or_default(),
            status: s.status.unwrap_or_default(),
        }
    }
}

/// A verified webhook answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WebhookAnswer {
    pub allowed: bool,
    /// The webhook's status as sent (absent is normal when allowed).
    pub status: Option<Status>,
    /// A JSON Patch to apply; only ever set for mutating webhooks.
    pub patch: Option<json_patch::Patch>,
    pub warnings: Vec<String>,
    /// As sent; the caller prefixes keys with the webhook name.
    pub audit_annotations: BTreeMap<String, String>,
}

/// What a webhook did wrong in its answer. Messages follow kube-apiserver's where it
/// has one.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("webhook response is not a JSON AdmissionReview: {0}")]
    Malformed(#[source] serde_json::Error),
    #[error("expected webhook response of {expected}, Kind=AdmissionReview, got {got}")]
    WrongKind { expected: &'static str, got: String },
    #[error("webhook response was absent")]
    Absent,
    #[error("expected response.uid={expected:?}, got {got:?}")]
    WrongUid { expected: String, got: String },
    #[error("validating webhook may not return response.patch")]
    PatchFromValidating,
    #[error("validating webhook may not return response.patchType")]
    PatchTypeFromValidating,
    #[error("webhook returned response.patch but not response.patchType")]
    PatchWithoutType,
    #[error("webhook returned response.patchType but not response.patch")]
    TypeWithoutPatch,
    #[error("webhook returned invalid response.patchType of {0:?}")]
    EmptyPatchType(String),
    #[error("unsupported patch type {0:?}; only \"JSONPatch\" is supported")]
    UnsupportedPatchType(String),
    #[error("received undecodable patch in webhook response: response.patch is not base64: {0}")]
    PatchNotBase64(#[source] base64::DecodeError),
    #[error("received undecodable patch in webhook response: not a JSON Patch array: {0}")]
    PatchNotJsonPatch(#[source] serde_json::Error),
}

/// Reads and verifies a webhook's answer to the review sent as `version` for request
/// `uid`. `mutating` says which kind of webhook answered.
///
/// As in kube-apiserver, v1beta1 answers are not checked for `apiVersion`/`kind` or
/// `uid`, their `patchType` is taken to be JSONPatch, and a patch from a validating
/// webhook is ignored rather than refused.
pub fn decode_response(
    body: &[u8],
    version: ReviewVersion,
    uid: &str,
    mutating: bool,
) -> Result<WebhookAnswer, ResponseError> {
    // serde would also read a struct from a JSON array; an AdmissionReview is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        let e = <serde_json::Error as serde::de::Error>::custom("expected a JSON object");
        return Err(ResponseError::Malformed(e));
    }
    let review: ReviewIn = serde_json::from_slice(body).map_err(ResponseError::Malformed)?;
    let v1 = version == ReviewVersion::V1;
    if v1 {
        let api_version = review.api_version.as_deref().unwrap_or("");
        let kind = review.kind.as_deref().unwrap_or("");
        if api_version != version.api_version() || kind != KIND {
            return Err(ResponseError::WrongKind {
                expected: version.api_version(),
                got: describe_type(api_version, kind),
            });
        }
    }
    let response = review.response.ok_or(ResponseError::Absent)?;
    if v1 {
        let got = response.uid.unwrap_or_default();
        if got != uid {
            return Err(ResponseError::WrongUid {
                expected: uid.into(),
                got,
            });
        }
    }
    let patch = response.patch.filter(|p| !p.is_empty());
    let patch = match (mutating, v1) {
        (true, true) => {
            match (&patch, response.patch_type.as_deref()) {
                (Some(_), None) => return Err(ResponseError::PatchWithoutType),
                (None, Some(_)) => return Err(ResponseError::TypeWithoutPatch),
                (Some(_), Some("")) => return Err(ResponseError::EmptyPatchType(String::new())),
                (Some(_), Some(t)) if t != JSON_PATCH => {
                    return Err(ResponseError::UnsupportedPatchType(t.into()))
                }
                _ => {}
            }
            patch
        }
        (true, false) => patch,
        (false, true) => {
            if patch.is_some() {
                return Err(ResponseError::PatchFromValidating);
            }
            if response.patch_type.is_some() {
                return Err(ResponseError::PatchTypeFromValidating);
            }
            None
        }
        (false, false) => None,
    };
    let patch = patch.map(|p| decode_patch(&p)).transpose()?;
    Ok(WebhookAnswer {
        allowed: response.allowed.unwrap_or(false),
        status: response.status.map(Status::from),
        patch,
        warnings: response.warnings.unwrap_or_default(),
        audit_annotations: response.audit_annotations.unwrap_or_default(),
    })
}

fn decode_patch(b64: &str) -> Result<json_patch::Patch, ResponseError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(ResponseError::PatchNotBase64)?;
    serde_json::from_slice(&bytes).map_err(ResponseError::PatchNotJsonPatch)
}

/// `schema.GroupVersionKind.String()` of what was received.
fn describe_type(api_version: &str, kind: &str) -> String {
    let api_version = if api_version.contains('/') {
        api_version.to_owned()
    } else {
        // A core-group apiVersion ("v1") prints as "/v1" in Go.
        format!("/{api_version}")
    };
    format!("{api_version}, Kind={kind}")
}

#[cfg(test)]
impl WebhookAnswer {
    /// An answer for tests and in-process callers: allowed, nothing else.
    pub fn allowed() -> Self {
        Self {
            allowed: true,
            ..Self::default()
        }
    }
}

/// Encodes a webhook *answer* the way a Go webhook would, for tests.
#[cfg(test)]
pub fn encode_response(
    version: ReviewVersion,
    uid: &str,
    allowed: bool,
    status: Option<&Status>,
    patch: Option<&json_patch::Patch>,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut response = serde_json::json!({ "uid": uid, "allowed": allowed });
    if let Some(status) = status {
        response["status"] = serde_json::to_value(status)?;
    }
    if let Some(patch) = patch {
        let bytes = serde_json::to_vec(patch)?;
        response["patch"] = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into();
        response["patchType"] = JSON_PATCH.into();
    }
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": version.api_version(),
        "kind": KIND,
        "response": response,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Operation;
    use serde_json::{json, Value};

    const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn v1(response: Value) -> Vec<u8> {
        body(
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}),
        )
    }

    fn b64(v: Value) -> String {
        base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn encodes_the_request_in_both_versions() {
        let mut req = AdmissionRequest::pod(Operation::Create);
        req.uid = UID.into();
        req.namespace = "default".into();
        req.object = Some(json!({"metadata": {"name": "p"}}));
        for (version, api) in [
            (ReviewVersion::V1, "admission.k8s.io/v1"),
            (ReviewVersion::V1beta1, "admission.k8s.io/v1beta1"),
        ] {
            let v: Value = serde_json::from_slice(&encode_review(&req, version).unwrap()).unwrap();
            assert_eq!(v["apiVersion"], api);
            assert_eq!(v["kind"], "AdmissionReview");
            assert_eq!(v["request"]["uid"], UID);
            assert_eq!(v["request"]["operation"], "CREATE");
            assert_eq!(
                v["request"]["resource"],
                json!({"group": "", "version": "v1", "resource": "pods"})
            );
            assert_eq!(v["request"]["object"]["metadata"]["name"], "p");
            assert!(v.get("response").is_none());
        }
    }

    #[test]
    fn chooses_the_first_supported_version() {
        assert_eq!(
            ReviewVersion::choose(["v2", "v1beta1", "v1"]),
            Some(ReviewVersion::V1beta1)
        );
        assert_eq!(ReviewVersion::choose(["v1"]), Some(ReviewVersion::V1));
        assert_eq!(ReviewVersion::choose(["v2"]), None);
    }

    #[test]
    fn allowed_without_status_is_normal() {
        let a = decode_response(
            &v1(json!({"uid": UID, "allowed": true})),
            ReviewVersion::V1,
            UID,
            false,
        )
        .unwrap();
        assert_eq!(a, WebhookAnswer::allowed());
    }

    #[test]
    fn go_style_denial_with_full_status() {
        let a = decode_response(
            &v1(json!({
                "uid": UID, "allowed": false,
                "status": {"metadata": {}, "status": "Failure", "message": "no privileged pods",
                           "reason": "Forbidden", "code": 403, "details": {"causes": []}},
                "warnings": ["w1"], "auditAnnotations": {"k": "v"}
            })),
            ReviewVersion::V1,
            UID,
            false,
        )
        .unwrap();
        assert!(!a.allowed);
        let s = a.status.unwrap();
        assert_eq!(
            (s.code, s.message.as_str(), s.reason.as_str()),
            (Some(403), "no privileged pods", "Forbidden")
        );
        assert_eq!(a.warnings, vec!["w1"]);
        assert_eq!(a.audit_annotations.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn nulls_are_absent() {
        let a = decode_response(
            &v1(json!({"uid": UID, "allowed": false, "status": {"message": null, "code": null},
                       "warnings": null, "auditAnnotations": null, "patch": null, "patchType": null})),
            ReviewVersion::V1,
            UID,
            true,
        )
        .unwrap();
        assert_eq!(a.status, Some(Status::default()));
        assert!(a.patch.is_none());
    }

    #[test]
    fn mutating_patch_is_decoded() {
        let patch = json!([{"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]);
        let a = decode_response(
            &v1(json!({"uid": UID, "allowed": true, "patch": b64(patch.clone()), "patchType": "JSONPatch"})),
            ReviewVersion::V1,
            UID,
            true,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(a.patch.unwrap()).unwrap(), patch);
    }

    fn err(response: Vec<u8>, version: ReviewVersion, mutating: bool) -> String {
        decode_response(&response, version, UID, mutating)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn what_kube_apiserver_refuses() {
        let patch = b64(json!([]));
        let cases: Vec<(Vec<u8>, bool, &str)> = vec![
            (b"<html>".to_vec(), false, "webhook response is not a JSON AdmissionReview: "),
            (b"[]".to_vec(), false, "webhook response is not a JSON AdmissionReview: "),
            (
                body(json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                            "response": {"uid": UID, "allowed": true}})),
                false,
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, \
                 got admission.k8s.io/v1beta1, Kind=AdmissionReview",
            ),
            (
                body(json!({"response": {"uid": UID, "allowed": true}})),
                false,
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got /, Kind=",
            ),
            (
                body(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})),
                false,
                "webhook response was absent",
            ),
            (
                v1(json!({"uid": "other", "allowed": true})),
                false,
                "expected response.uid=\"705ab4f5-6393-11e8-b7cc-42010a800002\", got \"other\"",
            ),
            (
                v1(json!({"allowed": true})),
                false,
                "expected response.uid=\"705ab4f5-6393-11e8-b7cc-42010a800002\", got \"\"",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patch": patch, "patchType": "JSONPatch"})),
                false,
                "validating webhook may not return response.patch",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patchType": "JSONPatch"})),
                false,
                "validating webhook may not return response.patchType",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patch": patch})),
                true,
                "webhook returned response.patch but not response.patchType",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patchType": "JSONPatch"})),
                true,
                "webhook returned response.patchType but not response.patch",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patch": patch, "patchType": ""})),
                true,
                "webhook returned invalid response.patchType of \"\"",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patch": patch, "patchType": "MergePatch"})),
                true,
                "unsupported patch type \"MergePatch\"",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patch": "%%%", "patchType": "JSONPatch"})),
                true,
                "received undecodable patch in webhook response: response.patch is not base64",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patch": b64(json!({"op": "add"})), "patchType": "JSONPatch"})),
                true,
                "received undecodable patch in webhook response: not a JSON Patch array",
            ),
            (
                v1(json!({"uid": UID, "allowed": true, "patch": b64(json!([{"op": "frobnicate", "path": "/"}])),
                          "patchType": "JSONPatch"})),
                true,
                "received undecodable patch in webhook response: not a JSON Patch array",
            ),
        ];
        for (body, mutating, want) in cases {
            let got = err(body, ReviewVersion::V1, mutating);
            assert!(got.starts_with(want), "want {want:?}, got {got:?}");
        }
    }

    #[test]
    fn v1beta1_is_as_lenient_as_upstream() {
        let patch = json!([{"op": "add", "path": "/x", "value": 1}]);
        // No uid echo, no apiVersion, no patchType: accepted, patch taken as JSONPatch.
        let a = decode_response(
            &body(json!({"response": {"allowed": true, "patch": b64(patch.clone())}})),
            ReviewVersion::V1beta1,
            UID,
            true,
        )
        .unwrap();
        assert_eq!(serde_json::to_value(a.patch.unwrap()).unwrap(), patch);
        // A validating webhook's patch is dropped.
        let a = decode_response(
            &body(json!({"response": {"allowed": true, "patch": b64(patch)}})),
            ReviewVersion::V1beta1,
            UID,
            false,
        )
        .unwrap();
        assert!(a.patch.is_none());
        assert_eq!(
            err(
                body(json!({"kind": "AdmissionReview"})),
                ReviewVersion::V1beta1,
                false
            ),
            "webhook response was absent"
        );
    }

    #[test]
    fn garbage_never_panics() {
        let deep = "[".repeat(10_000);
        let inputs: Vec<&[u8]> = vec![
            b"",
            b"null",
            b"{",
            b"{}",
            b"\xff\xfe",
            b"{\"response\": 5}",
            b"{\"response\": {\"allowed\": \"yes\"}}",
            b"{\"apiVersion\": 1}",
            deep.as_bytes(),
        ];
        for input in inputs {
            for version in [ReviewVersion::V1, ReviewVersion::V1beta1] {
                for mutating in [false, true] {
                    assert!(decode_response(input, version, UID, mutating).is_err());
                }
            }
        }
    }

    #[test]
    fn encode_response_round_trips() {
        let patch: json_patch::Patch =
            serde_json::from_value(json!([{"op": "remove", "path": "/a"}])).unwrap();
        let status = Status {
            code: Some(400),
            message: "m".into(),
            ..Status::default()
        };
        let bytes =
            encode_response(ReviewVersion::V1, UID, false, Some(&status), Some(&patch)).unwrap();
        let a = decode_response(&bytes, ReviewVersion::V1, UID, true).unwrap();
        assert_eq!(a.patch, Some(patch));
        assert_eq!(a.status, Some(status));
    }
}
