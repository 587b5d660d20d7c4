//! What every long-running door starts the same way: the decision core (with its decision
//! log and metrics), the Prometheus endpoint, the config reloader, the periodic audit
//! (`gatekeeper.auditInterval`), and the signals that stop it.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::audit::{self, render, Target};
use crate::config::Config;
use crate::core::Decider;
use crate::metrics::{Metrics, SharedMetrics};
use crate::reload::{LiveDecider, Reloader};

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct Daemon {
    pub live: LiveDecider,
    pub metrics: SharedMetrics,
    /// The metrics endpoint, the reloader and the periodic audit, when configured.
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
        if let Some(interval) = config.gatekeeper.audit_interval {
            let audit = periodic_audit(interval, config.clone(), live.clone(), metrics.clone());
            background.push(Box::pin(audit));
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

/// Every `interval` (the first at start), audits the containerd this door fronts
/// (`proxy.containerd`: the proxy's upstream) with the policies serving then, and sets the
/// `portcullis_audit_*` gauges. A failed run is logged and leaves the last run's gauges.
async fn periodic_audit(
    interval: Duration,
    config: Config,
    live: LiveDecider,
    metrics: SharedMetrics,
) {
    let targets = [Target::Containerd(config.proxy.containerd.clone())];
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match audit::run(&targets, &config, live.load_full()).await {
            Ok(audited) => {
                let now = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                metrics.audited(audited.len(), &render::counts(&audited), now);
                tracing::info!(summary = %render::summary(&audited), "audit");
            }
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "audit failed; the audit gauges keep the last run's counts"
            ),
        }
    }
}
