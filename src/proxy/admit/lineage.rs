//! Ties a container to the image its record names, for the signature check: at the
//! containerd API the record's `image` is only a name, and the container runs whatever
//! snapshot `snapshot_key` names. When image signatures are verified, the container's
//! snapshot must descend from that image's layers, or the verified digest says nothing
//! about what runs.
//!
//! The image's top layer is found through the labels containerd's garbage collector keeps
//! (all unary calls): the image's target in the content store lists its manifests
//! (`containerd.io/gc.ref.content.m.<i>`, for an index) or its config
//! (`containerd.io/gc.ref.content.config`, for a manifest); a config lists the committed
//! snapshot its layers were unpacked into (`containerd.io/gc.ref.snapshot.<snapshotter>`,
//! the layers' chain ID). The container's snapshot's parent must be one of those.

use std::collections::BTreeMap;

use containerd_client::services::v1::snapshots::{StatSnapshotRequest, StatSnapshotResponse};
use containerd_client::services::v1::{Container, InfoRequest, InfoResponse};

use super::Proxy;
use crate::proxy::grpc::{Code, Status};

const CONTENT_INFO: &str = "/containerd.services.content.v1.Content/Info";
const SNAPSHOT_STAT: &str = "/containerd.services.snapshots.v1.Snapshots/Stat";
const MANIFESTS: &str = "containerd.io/gc.ref.content.m.";
const CONFIG: &str = "containerd.io/gc.ref.content.config";
const SNAPSHOT: &str = "containerd.io/gc.ref.snapshot.";
/// More manifests than any image index a node pulls.
const MAX_MANIFESTS: usize = 64;

impl Proxy {
    /// Refuses `container` (in `ns`) unless its snapshot descends from the layers of the
    /// image containerd holds as `digest`. A container with no snapshot has nothing of
    /// the image to run.
    pub(super) async fn check_lineage(
        &self,
        ns: &str,
        container: &Container,
        digest: &str,
    ) -> Result<(), Status> {
        if container.snapshot_key.is_empty() {
            return Ok(());
        }
        let refuse = |why: String| {
            Status::new(
                Code::PermissionDenied,
                format!(
                    "portcullis: container {:?} names image {:?} ({digest}), {why}: its \
                     signature would not be what runs; create the container from the image \
                     (ctr run, nerdctl) so that its snapshot is the image's",
                    container.id, container.image
                ),
            )
        };
        let layers = self.chain_ids(ns, digest, &container.snapshotter).await?;
        if layers.is_empty() {
            return Err(refuse(format!(
                "which is not unpacked for snapshotter {:?}",
                container.snapshotter
            )));
        }
        let request = StatSnapshotRequest {
            snapshotter: container.snapshotter.clone(),
            key: container.snapshot_key.clone(),
        };
        let stat: StatSnapshotResponse = self.upstream.unary(SNAPSHOT_STAT, ns, &request).await?;
        let parent = stat.info.map(|i| i.parent).unwrap_or_default();
        if layers.contains(&parent) {
            return Ok(());
        }
        Err(refuse(format!(
            "but its snapshot {:?} is made on {parent:?}, not on the image's layers",
            container.snapshot_key
        )))
    }

    /// The committed snapshots `digest`'s layers were unpacked into for `snapshotter`,
    /// one per platform manifest.
    async fn chain_ids(
        &self,
        ns: &str,
        digest: &str,
        snapshotter: &str,
    ) -> Result<Vec<String>, Status> {
        let labels = self.content_labels(ns, digest).await?;
        let mut manifests: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k.starts_with(MANIFESTS))
            .map(|(_, v)| v.clone())
            .take(MAX_MANIFESTS)
            .collect();
        if manifests.is_empty() {
            manifests.push(digest.to_owned());
        }
        let mut layers = Vec::new();
        for manifest in manifests {
            let labels = if manifest == digest {
                labels.clone()
            } else {
                self.content_labels(ns, &manifest).await?
            };
            let Some(config) = labels.get(CONFIG) else {
                continue;
            };
            let config = self.content_labels(ns, config).await?;
            if let Some(chain) = config.get(&format!("{SNAPSHOT}{snapshotter}")) {
                layers.push(chain.clone());
            }
        }
        Ok(layers)
    }

    /// The labels of blob `digest` in the content store; none when it is not there (a
    /// platform the node did not pull).
    async fn content_labels(
        &self,
        ns: &str,
        digest: &str,
    ) -> Result<BTreeMap<String, String>, Status> {
        let request = InfoRequest {
            digest: digest.to_owned(),
        };
        let answer: Result<InfoResponse, Status> =
            self.upstream.unary(CONTENT_INFO, ns, &request).await;
        match answer {
            Ok(r) => Ok(r
                .info
                .map(|i| i.labels.into_iter().collect())
                .unwrap_or_default()),
            Err(status) if status.code == Code::NotFound => Ok(BTreeMap::new()),
            Err(status) => Err(status),
        }
    }
}
