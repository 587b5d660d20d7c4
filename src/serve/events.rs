//! Lifecycle events from the hook door (container created, stopped: id, pid, bundle,
//! namespaces, image, verdict), posted to `POST /events`: each is written to the decision
//! log and sent to every subscriber of the events socket as one JSON line. A subscriber
//! that cannot keep up misses events (it is told how many) rather than slowing the hook.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it misses some.
const BACKLOG: usize = 1024;

pub struct Events {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    /// The event as recorded: the posted object, with `type` and `time` set if absent.
    pub fn record(mut event: Value) -> Value {
        if let Some(fields) = event.as_object_mut() {
            fields.entry("type").or_insert(json!("lifecycle"));
            fields.entry("time").or_insert_with(|| {
                json!(humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string())
            });
        }
        event
    }

    /// Sends `event` to every subscriber connected now.
    pub fn publish(&self, event: &Value) {
        let mut line = event.to_string();
        line.push('\n');
        // No subscriber is not an error.
        let _ = self.tx.send(line.into());
    }

    /// Serves subscribers on `listener` until dropped.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) {
        loop {
            let mut stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    crate::net::listener::accept_failed("events", &e).await;
                    continue;
                }
            };
            let mut rx = self.tx.subscribe();
            tokio::spawn(async move {
                loop {
                    let line = match rx.recv().await {
                        Ok(line) => line,
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            format!("{}\n", json!({"type": "missed", "count": missed})).into()
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    if stream.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
}
