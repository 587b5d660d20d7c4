//! What every long-running door starts the same way: the decision core (with its decision
//! log and metrics), the Prometheus endpoint, the config reloader, and the signals that
//! stop it.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::config::Config;
use crate::core::Decider;
use crate::metrics::{Metrics, SharedMetrics};
use crate::reload::{LiveDecider, Reloader};

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Daemon {
    pub live: LiveDecider,
    pub metrics: SharedMetrics,
    /// The metrics endpoint and the reloader, when configured.
    background: Vec<Task>,
}

impl Daemon {
    /// Builds the core from `config` (loaded from `path`, which is then watched).
    pub async fn start(config: &Config, path: Option<&Path>) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        let decider = Decider::new(config)?
            .with_decision_log(&config.decision_log)?
            .with_metrics(metrics.clone());
        let live: LiveDecider = Arc::new(ArcSwap::from_pointee(decider));
        let mut background: Vec<Task> = Vec::new();
        if let Some(addr) = config.metrics.listen {
            let exporter = crate::metrics::serve(addr, metrics.clone())
                .await
                .with_context(|| format!("metrics.listen {addr}"))?;
            background.push(Box::pin(exporter));
        }
        if let Some(path) = path {
            let reloader = Reloader::new(path, config, live.clone(), metrics.clone());
            background.push(Box::pin(reloader.run()));
        }
        Ok(Self {
            live,
            metrics,
            background,
        })
    }

    /// Runs `serving` with the background tasks until it ends or SIGINT/SIGTERM arrives.
    pub async fn run<T>(
        self,
        serving: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // They never end; with none, neither does this.
        let background = async {
            futures_util::future::join_all(self.background).await;
            std::future::pending::<()>().await
        };
        tokio::select! {
            served = serving => served.map(|_| ()),
            () = background => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = term.recv() => Ok(()),
        }
    }
}
