//! dockerd sends `Containers/Create` with no image; the Docker Engine API knows it. As
//! ctrdac does, ask dockerd which image the container runs.
//!
//! dockerd holds the container's lock while it starts it (and so while it waits on our
//! Create), so `GET /containers/{id}/json` would deadlock; the list endpoint reads
//! dockerd's lock-free view instead.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::net::unix::UnixConnector;

const TIMEOUT: Duration = Duration::from_secs(5);
const BODY_LIMIT: usize = 4 << 20;

#[derive(Clone)]
pub struct Docker {
    client: Client<UnixConnector, Empty<Bytes>>,
    socket: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedContainer {
    #[serde(default)]
    image: String,
    #[serde(default, rename = "ImageID")]
    image_id: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ImageInspect {
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
}

impl Docker {
    pub fn new(socket: &Path) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build(UnixConnector::new(socket)),
            socket: socket.display().to_string(),
        }
    }

    /// The image reference of a dockerd container: the name it was run with plus the
    /// digest when dockerd knows one (`busybox:1.36@sha256:…`), else the digest, else
    /// the tag, else the image id. `None` when dockerd has no such container.
    pub async fn image_of(&self, container_id: &str) -> Result<Option<String>, String> {
        let filters = serde_json::json!({"id": [container_id]}).to_string();
        let path = format!(
            "/containers/json?all=1&filters={}",
            percent_encoding::utf8_percent_encode(&filters, percent_encoding::NON_ALPHANUMERIC)
        );
        let listed: Vec<ListedContainer> = self.get(&path).await?.unwrap_or_default();
        let Some(c) = listed.into_iter().next() else {
            return Ok(None);
        };
        let image: ImageInspect = self
            .get(&format!("/images/{}/json", c.image_id))
            .await?
            .unwrap_or_default();
        Ok(Some(reference(&c.image, &c.image_id, &image)))
    }

    /// `GET path` of the Engine API as JSON; `None` on 404. The error names the path and
    /// the socket.
    pub(crate) async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
    ) -> Result<Option<T>, String> {
        let uri = format!("http://docker{path}");
        let req = Request::get(uri)
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let call = async {
            let response = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("{e}: {:?}", std::error::Error::source(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), BODY_LIMIT)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| format!("unexpected answer: {e}"))
        };
        tokio::time::timeout(TIMEOUT, call)
            .await
            .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
            .map_err(|e| format!("GET {path} on {}: {e}", self.socket))
    }
}

fn reference(name: &str, id: &str, image: &ImageInspect) -> String {
    let named = !name.is_empty()
        && !name.starts_with("sha256:")
        && !id.trim_start_matches("sha256:").starts_with(name);
    let repo_of = |r: &str| {
        let r = r.split('@').next().unwrap_or(r);
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        match r.rfind(':') {
            Some(i) if !r[i..].contains('/') => r[..i].to_owned(),
            _ => r.to_owned(),
        }
    };
    let digests = image.repo_digests.as_deref().unwrap_or_default();
    let digest = digests
        .iter()
        .find(|d| named && repo_of(d) == repo_of(name))
        .or_else(|| digests.first())
        .cloned();
    match (named, digest) {
        (true, _) if name.contains('@') => name.to_owned(),
        (true, Some(d)) if repo_of(&d) == repo_of(name) => {
            format!(
                "{name}@{}",
                d.split_once('@').map(|(_, h)| h).unwrap_or_default()
            )
        }
        (true, _) => name.to_owned(),
        (false, Some(d)) => d,
        (false, None) => image
            .repo_tags
            .as_deref()
            .and_then(|t| t.first().cloned())
            .unwrap_or_else(|| id.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(tags: &[&str], digests: &[&str]) -> ImageInspect {
        ImageInspect {
            repo_tags: Some(tags.iter().map(|s| s.to_string()).collect()),
            repo_digests: Some(digests.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn prefers_name_with_digest_then_digest_then_tag_then_id() {
        let d = "busybox@sha256:abc";
        assert_eq!(
            reference(
                "busybox:1.36",
                "sha256:1",
                &inspect(&["busybox:1.36"], &[d])
            ),
            "busybox:1.36@sha256:abc"
        );
        assert_eq!(
            reference("busybox:1.36", "sha256:1", &inspect(&["busybox:1.36"], &[])),
            "busybox:1.36"
        );
        assert_eq!(
            reference("sha256:1", "sha256:1", &inspect(&["busybox:1.36"], &[d])),
            d
        );
        assert_eq!(
            reference("", "sha256:1", &inspect(&["busybox:1.36"], &[])),
            "busybox:1.36"
        );
        assert_eq!(reference("", "sha256:1", &inspect(&[], &[])), "sha256:1");
        assert_eq!(
            reference(
                "reg:5000/app:v1",
                "sha256:1",
                &inspect(&[], &["reg:5000/app@sha256:f"])
            ),
            "reg:5000/app:v1@sha256:f"
        );
    }
}
