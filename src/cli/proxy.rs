//! `portcullis proxy`: serve the containerd door until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use super::daemon::Daemon;
use crate::config::{Config, ListenMode};
use crate::net::listener;
use crate::proxy::Proxy;

#[derive(clap::Args)]
pub struct Args {
    /// Config file (YAML); see docs/configuration.md.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Socket to listen on (overrides `proxy.listen`).
    #[arg(long)]
    listen: Option<PathBuf>,
    /// `MODE[:USER:GROUP]` of the socket (overrides `proxy.listenMode`).
    #[arg(long)]
    listen_mode: Option<String>,
    /// containerd's socket (overrides `proxy.containerd`).
    #[arg(long)]
    containerd: Option<PathBuf>,
    /// `HOST:PORT` for the Prometheus endpoint (overrides `metrics.listen`).
    #[arg(long)]
    metrics_listen: Option<std::net::SocketAddr>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.proxy.listen = listen;
    }
    if let Some(mode) = args.listen_mode {
        config.proxy.listen_mode = ListenMode::parse(&mode).context("--listen-mode")?;
    }
    if let Some(containerd) = args.containerd {
        config.proxy.containerd = containerd;
    }
    if let Some(addr) = args.metrics_listen {
        config.metrics.listen = Some(addr);
    }
    // One thread: relaying is I/O-bound, and keeping both h2 connections and every stream
    // task on one thread avoids a cross-thread wake-up per hop, which dominated latency.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let daemon = Daemon::start(&config, args.config.as_deref()).await?;
        let socket = config.proxy.listen.clone();
        let listener = listener::bind(&socket, &config.proxy.listen_mode)?;
        let proxy = Arc::new(Proxy::new(&config, daemon.live.clone()));
        tracing::info!(listen = %socket.display(), containerd = %config.proxy.containerd.display(), webhooks = config.webhooks.len(), "proxy serving");
        let result = daemon
            .run(async { proxy.serve(listener).await.context("serving") })
            .await;
        let _ = std::fs::remove_file(&socket);
        tracing::info!("proxy stopped");
        result.map(|()| ExitCode::SUCCESS)
    })
}
