//! dockerd's containers, through its Engine API (`GET /containers/json?all=1`).
//!
//! dockerd keeps no OCI spec of its own for a container: it writes one into containerd
//! (namespace `moby`) when it starts the container, and deletes it when the container
//! stops. That `Containers/Create` is what the proxy door judges for dockerd, so a running
//! dockerd container is audited from the very record containerd holds, by the proxy's
//! conversion, its image asked of dockerd as the proxy asks it. A stopped one has no spec
//! anywhere yet (dockerd builds it at the next start, from its config and the daemon's
//! settings then): it is listed, and skipped.

use std::path::{Path, PathBuf};

use containerd_client::services::v1::{GetContainerRequest, GetContainerResponse};
use serde::Deserialize;

use super::containerd::{failed, plain, GET_CONTAINER};
use super::{Listed, Runtime, View};
use crate::config::Config;
use crate::proxy::docker::Docker;
use crate::proxy::grpc::Code;
use crate::proxy::upstream::Upstream;

/// dockerd's containerd namespace unless its `GET /info` says another.
const MOBY: &str = "moby";

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Info {
    /// Docker 25+ (API 1.46): the containerd dockerd uses.
    #[serde(default)]
    containerd: Option<ContainerdInfo>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ContainerdInfo {
    #[serde(default)]
    address: String,
    #[serde(default)]
    namespaces: Namespaces,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Namespaces {
    #[serde(default)]
    containers: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Summary {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    state: String,
}

/// dockerd's containers at `socket`, and the containerd socket and namespace that hold
/// the running ones' specs (`fallback` when dockerd does not say which).
pub(super) async fn list(
    socket: &Path,
    fallback: &Path,
    config: &Config,
) -> anyhow::Result<(Vec<Listed>, (PathBuf, String))> {
    let api = Docker::new(socket);
    let unreachable = |e: String| {
        anyhow::anyhow!(
            "dockerd at {}: {e}; is dockerd running there? name its socket with --docker SOCK",
            socket.display()
        )
    };
    let info: Info = get(&api, "/info").await.map_err(unreachable)?;
    let (containerd, ns) = match info.containerd {
        Some(c) if !c.address.is_empty() => {
            let ns = Some(c.namespaces.containers).filter(|n| !n.is_empty());
            (PathBuf::from(c.address), ns.unwrap_or_else(|| MOBY.into()))
        }
        _ => (fallback.to_owned(), MOBY.into()),
    };
    let summaries: Vec<Summary> = get(&api, "/containers/json?all=1")
        .await
        .map_err(unreachable)?;
    let upstream = Upstream::new(&containerd);
    let resolver = api.clone();
    let mut out = Vec::new();
    for s in summaries {
        let view = if matches!(s.state.as_str(), "running" | "paused" | "restarting") {
            let got = upstream
                .unary::<_, GetContainerResponse>(
                    GET_CONTAINER,
                    &ns,
                    &GetContainerRequest { id: s.id.clone() },
                )
                .await;
            match got {
                Ok(GetContainerResponse {
                    container: Some(c),
                }) => super::containerd::view(&ns, &c, config, Some(&resolver)).await,
                Ok(_) => View::Unbuildable("containerd answered no container".into()),
                Err(e) if e.code == Code::NotFound => View::Skipped(format!(
                    "no container {:?} in namespace {ns:?} of the containerd at {}: dockerd uses another containerd; name it with --containerd SOCK",
                    s.id,
                    containerd.display()
                )),
                Err(e) if e.code == Code::Unavailable => {
                    return Err(failed(&containerd, "Containers/Get", &e))
                }
                Err(e) => View::Unbuildable(plain(&e)),
            }
        } else {
            View::Skipped(
                "not running: dockerd writes its OCI spec into containerd only when it starts the container".into(),
            )
        };
        let name = s
            .names
            .first()
            .map(|n| n.trim_start_matches('/').to_owned());
        out.push(Listed {
            runtime: Runtime::Docker,
            address: socket.display().to_string(),
            namespace: ns.clone(),
            name: name.unwrap_or_else(|| s.id.clone()),
            id: s.id,
            state: s.state,
            view,
        });
    }
    Ok((out, (containerd, ns)))
}

/// `GET path` through the proxy's Engine API client; a 404 is an error here.
async fn get<T: for<'de> Deserialize<'de>>(api: &Docker, path: &str) -> Result<T, String> {
    api.get(path)
        .await?
        .ok_or_else(|| format!("GET {path}: not found"))
}
