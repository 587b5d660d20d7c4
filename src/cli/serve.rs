//! `portcullis serve`: the admission webhook server, until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;

use super::proxy::optional;
use crate::config::Config;
use crate::core::Decider;
use crate::metrics::Metrics;
use crate::reload::{LiveDecider, Reloader};
use crate::serve::config::ListenerConfig;
use crate::serve::listen::Bound;
use crate::serve::routes::Routes;

#[derive(clap::Args)]
pub struct Args {
    /// Config file (YAML); its `serve.listeners` are served. See docs/serve.md.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Also listen on HOST:PORT, plain HTTP (for loopback and tests; use TLS otherwise).
    #[arg(long)]
    listen: Vec<SocketAddr>,
    /// Also listen on this unix socket (mode 0660).
    #[arg(long)]
    socket: Vec<PathBuf>,
    /// `HOST:PORT` for a separate Prometheus endpoint (overrides `metrics.listen`);
    /// `/metrics` is also on every serve listener.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Print the ValidatingWebhookConfiguration, MutatingWebhookConfiguration and the
    /// ImagePolicyWebhook AdmissionConfiguration + kubeconfig for serve at this base URL
    /// (e.g. https://portcullis.example.com:8443), with caBundle from the first TLS
    /// listener's certificate, then exit.
    #[arg(long, value_name = "URL")]
    print_k8s_config: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let extra = args
        .listen
        .iter()
        .map(|a| ListenerConfig {
            address: Some(*a),
            tls: None,
            socket: None,
            mode: None,
        })
        .chain(args.socket.iter().map(|s| ListenerConfig {
            address: None,
            tls: None,
            socket: Some(s.clone()),
            mode: None,
        }));
    config.serve.listeners.extend(extra);
    if let Some(addr) = args.metrics_listen {
        config.metrics.listen = Some(addr);
    }
    if let Some(url) = &args.print_k8s_config {
        print!("{}", crate::serve::k8s::print_k8s_config(&config, url)?);
        return Ok(ExitCode::SUCCESS);
    }
    if config.serve.listeners.is_empty() {
        anyhow::bail!(
            "nothing to listen on: set serve.listeners in the config, or --listen / --socket"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let metrics = Arc::new(Metrics::new());
        let decider = Decider::new(&config)?
            .with_decision_log(&config.decision_log)?
            .with_metrics(metrics.clone());
        let live: LiveDecider = Arc::new(ArcSwap::from_pointee(decider));
        let mut bound = Vec::new();
        for listener in &config.serve.listeners {
            bound.push(Bound::bind(listener).await?);
        }
        let exporter = match config.metrics.listen {
            Some(addr) => Some(
                crate::metrics::serve(addr, metrics.clone())
                    .await
                    .with_context(|| format!("metrics.listen {addr}"))?,
            ),
            None => None,
        };
        let reloader = args
            .config
            .as_deref()
            .map(|path| Reloader::new(path, &config, live.clone(), metrics.clone()));
        let routes = Arc::new(Routes {
            live,
            metrics,
            max_request_bytes: config.serve.max_request_bytes,
        });
        let serving =
            futures_util::future::join_all(bound.into_iter().map(|b| b.serve(routes.clone())));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = serving => {}
            () = optional(exporter) => {}
            () = optional(reloader.map(Reloader::run)) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        for socket in config
            .serve
            .listeners
            .iter()
            .filter_map(|l| l.socket.as_ref())
        {
            let _ = std::fs::remove_file(socket);
        }
        tracing::info!("serve stopped");
        Ok(ExitCode::SUCCESS)
    })
}
