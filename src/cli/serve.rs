//! `portcullis serve`: the admission webhook server, until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::daemon::Daemon;
use crate::config::{Config, ListenMode, ListenerConfig};
use crate::net::listener;
use crate::serve::events::Events;
use crate::serve::listen::Bound;
use crate::serve::routes::Routes;
use anyhow::Context;

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
        let daemon = Daemon::start(&config, args.config.as_deref()).await?;
        // Events first: once a review socket answers, subscribers can connect.
        let events = Arc::new(Events::default());
        let subscribers = match &config.events.socket {
            Some(path) => {
                let listener = listener::bind(path, &ListenMode::default())
                    .with_context(|| format!("events.socket {}", path.display()))?;
                Some(events.clone().serve(listener))
            }
            None => None,
        };
        let mut bound = Vec::new();
        for listener in &config.serve.listeners {
            bound.push(Bound::bind(listener).await?);
        }
        let routes = Arc::new(Routes {
            live: daemon.live.clone(),
            metrics: daemon.metrics.clone(),
            max_request_bytes: config.serve.max_request_bytes,
            events,
        });
        let listeners =
            futures_util::future::join_all(bound.into_iter().map(|b| b.serve(routes.clone())));
        let serving = async move {
            match subscribers {
                Some(s) => tokio::join!(listeners, s).0,
                None => listeners.await,
            }
        };
        let result = daemon.run(async { Ok(serving.await) }).await;
        for socket in config
            .serve
            .listeners
            .iter()
            .filter_map(|l| l.socket.as_ref())
        {
            let _ = std::fs::remove_file(socket);
        }
        tracing::info!("serve stopped");
        result.map(|()| ExitCode::SUCCESS)
    })
}
