//! `images.v1.Images/Create` and `/Update`: where every containerd 1.x client records an
//! image it pulled or imported (`ctr pull`, `ctr images import`, nerdctl, the CRI plugin
//! goes through its own store). A record whose target fails signature verification
//! (`ImageVerificationPolicy`) in the call's namespace is refused, so the image never
//! becomes usable there; the name rules (`images:`) judge containers, not records, and
//! without trust policies a record is passed on without a decision. An
//! update that leaves the target alone (`update_mask` without `target`) records nothing
//! new and passes.

use std::collections::BTreeMap;

use containerd_client::services::v1::{GetImageRequest, GetImageResponse, Image};
use serde_json::Value;

use super::{Admitted, Proxy};
use crate::core::Scope;
use crate::proxy::grpc::{Code, Status};
use crate::review::{AdmissionRequest, Door, UserInfo};

impl Proxy {
    /// Judges the record `image` is about to become in namespace `ns`.
    pub(super) async fn record_image(
        &self,
        ns: &str,
        user: &UserInfo,
        image: Option<Image>,
        call: &str,
    ) -> Result<Admitted, Status> {
        // Nothing judges records without trust policies: no decision to make or log.
        if !self.decider.load().verifies_signatures() {
            return Ok(Admitted::Unchanged);
        }
        let invalid =
            |why: &str| Status::new(Code::InvalidArgument, format!("portcullis: {call}: {why}"));
        let image = image.ok_or_else(|| invalid("the request has no image"))?;
        let target = image
            .target
            .ok_or_else(|| invalid("the image has no target"))?;
        let reference = pinned(&image.name, &target.digest).map_err(|why| invalid(&why))?;
        let review = AdmissionRequest::for_pull(&reference, ns, "", user.clone());
        self.decide_at(Door::Proxy, Scope::Signatures, &review)
            .await?;
        Ok(Admitted::Unchanged)
    }
}

const GET_IMAGE: &str = "/containerd.services.images.v1.Images/Get";

impl Proxy {
    /// The digests containerd holds, in namespace `ns`, under the image names of `pod`'s
    /// containers (by container name): what the signature check verifies, so that an
    /// image recorded before a policy required signatures is judged when a container of
    /// it is created. Looked up only when signatures are verified; a name containerd does
    /// not hold (dockerd keeps its images itself) has none, and its tag is resolved at
    /// the registry instead.
    pub(super) async fn held_digests(
        &self,
        ns: &str,
        pod: &Value,
    ) -> Result<BTreeMap<String, String>, Status> {
        let mut held = BTreeMap::new();
        if !self.decider.load().verifies_signatures() {
            return Ok(held);
        }
        let containers = pod["spec"]["containers"].as_array().into_iter().flatten();
        for c in containers {
            let (Some(name), Some(image)) = (c["name"].as_str(), c["image"].as_str()) else {
                continue;
            };
            let request = GetImageRequest {
                name: image.to_owned(),
            };
            let got: Result<GetImageResponse, Status> =
                self.upstream.unary(GET_IMAGE, ns, &request).await;
            let digest = match got {
                Ok(r) => r.image.and_then(|i| i.target).map(|t| t.digest),
                Err(status) if status.code == Code::NotFound => None,
                Err(status) => return Err(status),
            };
            if let Some(digest) = digest.filter(|d| !d.is_empty()) {
                held.insert(name.to_owned(), digest);
            }
        }
        Ok(held)
    }
}

/// The image's name pinned to its target digest.
fn pinned(name: &str, digest: &str) -> Result<String, String> {
    if digest.is_empty() {
        return Err("the image's target has no digest".into());
    }
    match name.split_once('@') {
        Some((_, named)) if named == digest => Ok(name.to_owned()),
        Some((_, named)) => Err(format!(
            "the image's name {name:?} names digest {named}, its target {digest}"
        )),
        None => Ok(format!("{name}@{digest}")),
    }
}

/// Whether an update's mask lets it change the target (an empty mask updates every field).
pub(super) fn changes_target(paths: &[String]) -> bool {
    paths.is_empty()
        || paths
            .iter()
            .any(|p| p == "target" || p.starts_with("target."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_judged_as_its_name_pinned_to_its_target() {
        assert_eq!(pinned("r/a:1", "sha256:aa").unwrap(), "r/a:1@sha256:aa");
        assert_eq!(
            pinned("r/a@sha256:aa", "sha256:aa").unwrap(),
            "r/a@sha256:aa"
        );
        assert!(pinned("r/a@sha256:bb", "sha256:aa").is_err());
        assert!(pinned("r/a:1", "").is_err());
        assert!(changes_target(&[]));
        assert!(changes_target(&["labels".into(), "target".into()]));
        assert!(!changes_target(&["labels.x".into()]));
    }
}
