//! The decision log: one JSON line per decision, to an append-only file and/or stdout.
//!
//! Durability: records go to a writer thread that appends every record waiting, then
//! `fdatasync`s once for the batch (group commit) and only then acknowledges them. A
//! decision waits for its acknowledgement at most `timeout` (default 1 s): an
//! acknowledged record survives a crash, and a slow or broken disk delays admission by
//! that bound, never indefinitely (the decision then goes ahead and the lag is logged).

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::DecisionLogConfig;

struct Entry {
    line: Vec<u8>,
    ack: oneshot::Sender<()>,
}

pub struct DecisionLog {
    sender: mpsc::Sender<Entry>,
    timeout: Duration,
}

impl DecisionLog {
    /// `None` when the log is off (no file, no stdout).
    pub fn open(config: &DecisionLogConfig) -> std::io::Result<Option<Self>> {
        if config.file.is_none() && !config.stdout {
            return Ok(None);
        }
        let timeout = match &config.timeout {
            Some(t) => humantime::parse_duration(t).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("decisionLog.timeout {t:?}: {e}"),
                )
            })?,
            None => Duration::from_secs(1),
        };
        let file = match &config.file {
            Some(path) => Some(open_append(path)?),
            None => None,
        };
        let (sender, receiver) = mpsc::channel();
        let (stdout, fsync) = (config.stdout, config.fsync);
        std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_loop(receiver, file, stdout, fsync))?;
        Ok(Some(Self { sender, timeout }))
    }

    /// Appends `record` and waits (bounded) until it is durable.
    pub async fn append(&self, record: &Value) {
        let mut line = serde_json::to_vec(record).unwrap_or_default();
        line.push(b'\n');
        let (ack, acked) = oneshot::channel();
        if self.sender.send(Entry { line, ack }).is_err() {
            tracing::error!("decision log writer has stopped; record lost");
            return;
        }
        match tokio::time::timeout(self.timeout, acked).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::error!("decision log could not write a record"),
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, "decision log is slow; admitting without waiting for the record")
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("decision log {}: {e}", path.display())))
}

/// Group commit: take every record waiting, write them, sync once, acknowledge them all.
fn write_loop(
    receiver: mpsc::Receiver<Entry>,
    mut file: Option<std::fs::File>,
    stdout: bool,
    fsync: bool,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        let bytes: Vec<u8> = batch.iter().flat_map(|e| e.line.iter().copied()).collect();
        let mut ok = true;
        if let Some(f) = file.as_mut() {
            ok &= f.write_all(&bytes).is_ok() && (!fsync || f.sync_data().is_ok());
        }
        if stdout {
            let mut out = std::io::stdout().lock();
            ok &= out.write_all(&bytes).and_then(|()| out.flush()).is_ok();
        }
        if !ok {
            tracing::error!(
                "decision log write failed; {} record(s) not acknowledged",
                batch.len()
            );
            continue;
        }
        for entry in batch {
            let _ = entry.ack.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn records_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/decisions.jsonl");
        let config = DecisionLogConfig {
            file: Some(path.clone()),
            fsync: true,
            ..Default::default()
        };
        let log = DecisionLog::open(&config).unwrap().unwrap();
        let writes = (0..50).map(|i| {
            let log = &log;
            async move { log.append(&json!({"n": i})).await }
        });
        futures_util::future::join_all(writes).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 50);
        assert!(DecisionLog::open(&DecisionLogConfig::default())
            .unwrap()
            .is_none());
        let bad = DecisionLogConfig {
            stdout: true,
            timeout: Some("soon".into()),
            ..Default::default()
        };
        assert!(DecisionLog::open(&bad).is_err());
    }
}
