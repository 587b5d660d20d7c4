//! The containerd door: a unix-socket gRPC proxy that relays every call to containerd
//! untouched and admits the calls that create or change containers.
//!
//! Relaying is at the HTTP/2 frame level ([`relay`]): every service — containerd's, CRI's,
//! health — and every streaming shape passes without the proxy knowing its protos, and
//! every client containerd accepts is accepted, whatever `:authority` it sends. Only the
//! methods in [`admit::Method`] are read.

mod admit;
// The fuzz targets' entry points into the admitted path (`crate::fuzzing`).
pub(crate) mod docker;
pub(crate) mod fuzzing;
pub mod grpc;
pub(crate) mod limits;
pub(crate) mod raw;
pub mod record;
mod relay;
mod route;
pub(crate) mod upstream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UnixListener;

use crate::config::{Config, Conversion, CriMode, KubeletDirs, TaskRules};
use crate::convert::PodOptions;
use crate::net::peer::PeerCred;
use crate::reload::LiveDecider;
use crate::review::UserInfo;
use limits::Limits;
use upstream::Upstream;

/// The proxy's settings, resolved from the config file.
pub struct Proxy {
    upstream: Upstream,
    decider: LiveDecider,
    conversion: Conversion,
    pod: PodOptions,
    docker: Option<docker::Docker>,
    cri: CriMode,
    /// The kubelet's directories, for the CRI door's reading of mounts and logs.
    kubelet: KubeletDirs,
    cri_trusted_uids: Vec<u32>,
    tasks: TaskRules,
    limits: Arc<Limits>,
}

/// Who is calling on one connection, resolved whole at accept: credentials read later
/// (from `/proc/PID`) could be another process's once the pid is reused.
struct Caller {
    user: UserInfo,
}

impl Caller {
    fn accept(stream: &tokio::net::UnixStream) -> Self {
        let user = match PeerCred::of(stream) {
            Ok(cred) => cred.user_info(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the caller's credentials (SO_PEERCRED); it is judged as an anonymous user");
                UserInfo::default()
            }
        };
        Self { user }
    }

    fn user_info(&self) -> &UserInfo {
        &self.user
    }
}

impl Proxy {
    pub fn new(config: &Config, decider: LiveDecider) -> Self {
        let p = &config.proxy;
        Self {
            upstream: Upstream::new(&p.containerd),
            decider,
            conversion: p.conversion,
            pod: PodOptions::new(config),
            docker: p.docker.as_deref().map(docker::Docker::new),
            cri: p.cri,
            kubelet: p.kubelet.clone(),
            cri_trusted_uids: p.cri_trusted_uids.clone(),
            tasks: p.tasks.clone(),
            limits: Arc::new(Limits::new(p.max_connections.get())),
        }
    }

    /// Serves connections from `listener` until the task is dropped, within [`Limits`]:
    /// each connection waits for its preface in one of `maxConnections` slots (the
    /// longest waiting is evicted when they are full, and each is closed after
    /// [`relay::PREFACE_TIMEOUT`]), then is relayed in one of `maxConnections` more, or
    /// has its calls answered `ResourceExhausted`.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) -> std::io::Result<()> {
        let limits = self.limits.clone();
        crate::net::listener::raise_fd_limit(limits.descriptors(), "proxy.maxConnections");
        tokio::spawn(limits.clone().trim_memory());
        let mut warned: Option<Instant> = None;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    crate::net::listener::accept_failed("proxy", &e).await;
                    continue;
                }
            };
            let (evicted, evicting) = limits.wait_for_preface();
            if evicting && warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                warned = Some(Instant::now());
                tracing::warn!(max_connections = limits.max, "closing the connections that have waited longest for their HTTP/2 preface: proxy.maxConnections are waiting");
            }
            let caller = Arc::new(Caller::accept(&stream));
            tokio::spawn(relay::accept(self.clone(), caller, stream, evicted));
        }
    }
}
