//! The HTTP endpoints of `portcullis serve`, over whatever listener the request came in on.
//!
//! | endpoint | body | decided by |
//! | --- | --- | --- |
//! | `POST /validate` | AdmissionReview v1/v1beta1 | the validation phase, on the object as sent |
//! | `POST /mutate` | AdmissionReview v1/v1beta1 | the mutation phase; the change as a JSON Patch |
//! | `POST /image_policy` | ImageReview v1alpha1 | the image rules |
//! | `POST /validate_raw` | any JSON object | the validation phase |
//! | `POST /admit?door=D` | AdmissionReview v1/v1beta1 | the whole chain, for a runtime door (hook, runc) |
//! | `POST /events` | a lifecycle event (JSON object) | recorded and sent to subscribers |
//! | `GET /healthz`, `/readyz`, `/metrics` | | |
//!
//! A body that is not what the endpoint reads is HTTP 400 with `{"error": "..."}`; one over
//! `serve.maxRequestBytes` is 413. Nothing a caller sends reaches a panic.

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use serde_json::{json, Value};

use crate::core::{Decider, Scope};
use crate::metrics::{probe, reply, SharedMetrics};
use crate::reload::LiveDecider;
use crate::review::{AdmissionRequest, Door, Operation, UserInfo};

use std::sync::Arc;

use super::events::Events;
use super::{image_review, review};

pub struct Routes {
    pub live: LiveDecider,
    pub metrics: SharedMetrics,
    pub max_request_bytes: usize,
    pub events: Arc<Events>,
}

/// The doors that may ask through `/admit?door=`, as they appear in logs and metrics.
const RUNTIME_DOORS: [Door; 4] = [Door::Hook, Door::Runc, Door::Proxy, Door::VerifyImage];

type Reply = Response<Full<Bytes>>;

impl Routes {
    /// Answers one request from a caller known as `peer` (mTLS subject, socket peer).
    pub async fn handle<B>(&self, peer: Option<&UserInfo>, req: Request<B>) -> Reply
    where
        B: http_body::Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = req.uri().path().to_owned();
        let endpoint = match path.as_str() {
            "/validate" => Endpoint::Review(Scope::Validation),
            "/mutate" => Endpoint::Review(Scope::Mutation),
            "/image_policy" => Endpoint::ImageReview,
            "/validate_raw" => Endpoint::Raw,
            "/admit" => Endpoint::Admit,
            "/events" => Endpoint::Event,
            _ if let Some((content_type, body)) = probe(&self.metrics, &path) => {
                if req.method() != Method::GET {
                    return error(StatusCode::METHOD_NOT_ALLOWED, &format!("{path}: use GET"));
                }
                return reply(StatusCode::OK, content_type, body);
            }
            _ => {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!(
                    "no endpoint {path}; POST /validate, /mutate, /image_policy or /validate_raw"
                ),
                )
            }
        };
        if req.method() != Method::POST {
            return error(StatusCode::METHOD_NOT_ALLOWED, &format!("{path}: use POST"));
        }
        let query = req.uri().query().unwrap_or_default().to_owned();
        let body = match self.body(req).await {
            Ok(body) => body,
            Err(reply) => return reply,
        };
        let decider = self.live.load_full();
        match endpoint {
            Endpoint::Admit => admit(&decider, peer, &query, &body).await,
            Endpoint::Event => self.event(&decider, &body).await,
            Endpoint::Review(scope) => review(&decider, peer, scope, &body).await,
            Endpoint::ImageReview => image_policy(&decider, peer, &body).await,
            Endpoint::Raw => validate_raw(&decider, peer, &query, &body).await,
        }
    }

    /// `POST /events`: recorded in the decision log and sent to subscribers.
    async fn event(&self, decider: &Decider, body: &[u8]) -> Reply {
        let event: Value = match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return error(StatusCode::BAD_REQUEST, "an event is a JSON object"),
        };
        let event = Events::record(event);
        if let Some(log) = decider.decision_log() {
            log.append(&event).await;
        }
        self.events.publish(&event);
        json_reply(StatusCode::ACCEPTED, b"{}".to_vec())
    }

    /// The whole body, at most `max_request_bytes`.
    async fn body<B>(&self, req: Request<B>) -> Result<Bytes, Reply>
    where
        B: http_body::Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let too_large = || {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the body exceeds {} bytes (serve.maxRequestBytes)",
                    self.max_request_bytes
                ),
            )
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.max_request_bytes) {
            return Err(too_large());
        }
        match Limited::new(req.into_body(), self.max_request_bytes)
            .collect()
            .await
        {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) => Err(error(
                StatusCode::BAD_REQUEST,
                &format!("reading the body: {e}"),
            )),
        }
    }
}

/// `POST /admit?door=D`: what runtime door `D` asks the daemon (the whole chain; the image
/// rules alone for `verify-image`).
async fn admit(decider: &Decider, peer: Option<&UserInfo>, query: &str, body: &[u8]) -> Reply {
    let door = form_pairs(query)
        .find(|(k, _)| k == "door")
        .map(|(_, v)| v)
        .unwrap_or_else(|| Door::Hook.as_str().into());
    let Some(door) = Door::from_name(&door).filter(|d| RUNTIME_DOORS.contains(d)) else {
        let known: Vec<&str> = RUNTIME_DOORS.iter().map(|d| d.as_str()).collect();
        let known = known.join(", ");
        return error(
            StatusCode::BAD_REQUEST,
            &format!("door={door:?}: use one of {known}"),
        );
    };
    let (version, mut request) = match review::decode(body) {
        Ok(decoded) => decoded,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    fill_user(&mut request, peer);
    let verdict = decider.admit(door, &request).await;
    let response = review::response(&request, &verdict, true);
    json_reply(StatusCode::OK, review::encode(version, &response))
}

/// `POST /validate` and `/mutate`: one phase, as kube-apiserver calls a webhook.
async fn review(decider: &Decider, peer: Option<&UserInfo>, scope: Scope, body: &[u8]) -> Reply {
    let (version, mut request) = match review::decode(body) {
        Ok(decoded) => decoded,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    fill_user(&mut request, peer);
    let verdict = decider.admit_scoped(Door::Serve, &request, scope).await;
    let response = review::response(&request, &verdict, scope == Scope::Mutation);
    json_reply(StatusCode::OK, review::encode(version, &response))
}

/// `POST /image_policy`: an ImageReview, judged by the image rules.
async fn image_policy(decider: &Decider, peer: Option<&UserInfo>, body: &[u8]) -> Reply {
    let mut request = match image_review::decode(body, decider.break_glass_label()) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    fill_user(&mut request, peer);
    let verdict = decider
        .admit_scoped(Door::Serve, &request, Scope::Images)
        .await;
    json_reply(StatusCode::OK, image_review::encode(&verdict))
}

/// `POST /validate_raw`: any object, through the validation phase.
async fn validate_raw(
    decider: &Decider,
    peer: Option<&UserInfo>,
    query: &str,
    body: &[u8],
) -> Reply {
    let mut request = match raw_request(body, query) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    fill_user(&mut request, peer);
    let verdict = decider
        .admit_scoped(Door::Serve, &request, Scope::Validation)
        .await;
    let answer = json!({
        "allowed": verdict.is_allowed(),
        "status": verdict.status(),
        "warnings": verdict.warnings,
        "auditAnnotations": verdict.audit_annotations,
        "policies": verdict.trail,
    });
    json_reply(
        StatusCode::OK,
        serde_json::to_vec(&answer).unwrap_or_default(),
    )
}

enum Endpoint {
    Review(Scope),
    ImageReview,
    Raw,
    Admit,
    Event,
}

/// The caller of the webhook stands in for the user when the body names none (ImageReview,
/// raw objects, an AdmissionReview without userInfo).
fn fill_user(request: &mut AdmissionRequest, peer: Option<&UserInfo>) {
    let user = &request.user_info;
    if user.username.is_empty() && user.uid.is_empty() && user.groups.is_empty() {
        if let Some(peer) = peer {
            request.user_info = peer.clone();
        }
    }
}

/// A raw object as the request a Kubernetes API server would have built for it.
/// `?namespace=` and `?operation=` (default CREATE) may be given.
fn raw_request(body: &[u8], query: &str) -> Result<AdmissionRequest, String> {
    let object: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    if !object.is_object() {
        return Err("the body must be a JSON object".into());
    }
    let mut namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut operation = Operation::Create;
    for (key, value) in form_pairs(query) {
        match key.as_str() {
            "namespace" => namespace = value,
            "operation" => {
                operation = serde_json::from_value(json!(value.to_uppercase())).map_err(|_| {
                    format!("operation={value:?}: use CREATE, UPDATE, DELETE or CONNECT")
                })?
            }
            _ => {}
        }
    }
    let mut request = AdmissionRequest::for_object(operation, object);
    request.namespace = namespace;
    Ok(request)
}

fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        Some((decode(k), decode(v)))
    })
}

fn json_reply(status: StatusCode, body: Vec<u8>) -> Reply {
    reply(status, "application/json", body)
}

fn error(status: StatusCode, message: &str) -> Reply {
    let body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    json_reply(status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_object_takes_its_kind_namespace_and_operation() {
        let body =
            br#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}"#;
        let r = raw_request(body, "namespace=prod&operation=update").unwrap();
        assert_eq!(
            (r.kind.group.as_str(), r.kind.kind.as_str()),
            ("apps", "Deployment")
        );
        assert_eq!(r.resource.resource, "deployments");
        assert_eq!((r.namespace.as_str(), r.name.as_str()), ("prod", "web"));
        assert_eq!(r.operation, Operation::Update);
        assert!(raw_request(b"[1]", "").unwrap_err().contains("JSON object"));
        assert!(raw_request(b"{}", "operation=PATCH")
            .unwrap_err()
            .contains("PATCH"));
    }
}
