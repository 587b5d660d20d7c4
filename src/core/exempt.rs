//! Requests the chain does not judge: exemptions (namespaces, images by digest, callers),
//! as Pod Security Admission has them, and break-glass — a labelled container let through
//! for named callers while break-glass is enabled, every use recorded.

use serde_json::Value;

use crate::config::{BreakGlass, Exemptions};
use crate::review::{AdmissionRequest, UserInfo};

/// Why a request is not judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    Exempt(String),
    BreakGlass(String),
}

/// Pure: whether `request` skips the chain.
pub fn pass(
    exemptions: &Exemptions,
    break_glass: &BreakGlass,
    request: &AdmissionRequest,
) -> Option<Pass> {
    if exemptions.namespaces.contains(&request.namespace) {
        return Some(Pass::Exempt(format!(
            "namespace {:?} is exempt",
            request.namespace
        )));
    }
    if let Some(caller) = exemptions
        .callers
        .iter()
        .find(|c| caller_matches(c, &request.user_info))
    {
        return Some(Pass::Exempt(format!("caller {caller:?} is exempt")));
    }
    let view = crate::review::pod_view::pod_view(request);
    let object = view.as_ref().map(|v| v.pod.as_ref());
    let images = object.map(images_of).unwrap_or_default();
    if !images.is_empty()
        && !exemptions.images.is_empty()
        && images.iter().all(|i| digest_listed(i, &exemptions.images))
    {
        return Some(Pass::Exempt(
            "every image is pinned to an exempt digest".into(),
        ));
    }
    if break_glass.enabled {
        let labelled = object
            .and_then(|o| o.pointer("/metadata/labels"))
            .and_then(|l| l.get(&break_glass.label))
            .is_some();
        if labelled {
            if let Some(caller) = break_glass
                .callers
                .iter()
                .find(|c| caller_matches(c, &request.user_info))
            {
                return Some(Pass::BreakGlass(format!(
                    "break-glass label {:?} used by caller {caller:?} ({})",
                    break_glass.label, request.user_info.username
                )));
            }
        }
    }
    None
}

fn caller_matches(entry: &str, user: &UserInfo) -> bool {
    let gids = user.extra.get("portcullis.dev/gid").into_iter().flatten();
    match entry.split_once(':') {
        Some(("uid", n)) => user.uid == n,
        Some(("gid", n)) => {
            gids.into_iter().any(|g| g == n) || user.groups.iter().any(|g| g == &format!("gid:{n}"))
        }
        _ => user.username == entry || user.groups.iter().any(|g| g == entry),
    }
}

fn images_of(object: &Value) -> Vec<String> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|k| object.pointer(&format!("/spec/{k}"))?.as_array())
        .flatten()
        .map(|c| c["image"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn digest_listed(image: &str, digests: &[String]) -> bool {
    let Some((_, digest)) = image.rsplit_once('@') else {
        return false;
    };
    digests
        .iter()
        .any(|d| d.rsplit_once('@').map(|(_, h)| h).unwrap_or(d) == digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::Operation;
    use serde_json::json;

    fn request(ns: &str, image: &str, labels: Value, uid: &str) -> AdmissionRequest {
        let mut r = AdmissionRequest::pod(Operation::Create);
        r.namespace = ns.into();
        r.user_info = UserInfo {
            username: "alice".into(),
            uid: uid.into(),
            groups: vec!["ops".into()],
            ..Default::default()
        };
        r.object = Some(
            json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": image}]}}),
        );
        r
    }

    #[test]
    fn exemptions_by_namespace_caller_and_digest() {
        let e = Exemptions {
            namespaces: vec!["kube-system".into()],
            images: vec!["busybox@sha256:aaa".into()],
            callers: vec!["uid:1000".into(), "ops".into()],
        };
        let bg = BreakGlass::default();
        assert!(matches!(
            pass(&e, &bg, &request("kube-system", "x", json!({}), "0")),
            Some(Pass::Exempt(_))
        ));
        assert!(matches!(
            pass(&e, &bg, &request("default", "x", json!({}), "1000")),
            Some(Pass::Exempt(_))
        ));
        let no_ops = Exemptions {
            callers: vec![],
            ..e.clone()
        };
        assert!(matches!(
            pass(
                &no_ops,
                &bg,
                &request("default", "b:1@sha256:aaa", json!({}), "0")
            ),
            Some(Pass::Exempt(_))
        ));
        assert_eq!(
            pass(
                &no_ops,
                &bg,
                &request("default", "b:1@sha256:bbb", json!({}), "0")
            ),
            None
        );
        assert_eq!(
            pass(&no_ops, &bg, &request("default", "b:1", json!({}), "0")),
            None
        );
    }

    #[test]
    fn break_glass_needs_label_listed_caller_and_enabled() {
        let e = Exemptions::default();
        let mut bg = BreakGlass {
            callers: vec!["uid:0".into()],
            ..Default::default()
        };
        let labelled = request(
            "default",
            "x",
            json!({"portcullis.dev/break-glass": "incident-42"}),
            "0",
        );
        assert_eq!(
            pass(&e, &bg, &labelled),
            None,
            "disabled break-glass passed"
        );
        bg.enabled = true;
        assert!(matches!(
            pass(&e, &bg, &labelled),
            Some(Pass::BreakGlass(_))
        ));
        assert_eq!(
            pass(
                &e,
                &bg,
                &request(
                    "default",
                    "x",
                    json!({"portcullis.dev/break-glass": "x"}),
                    "1000"
                )
            ),
            None
        );
        assert_eq!(
            pass(&e, &bg, &request("default", "x", json!({}), "0")),
            None
        );
    }
}
