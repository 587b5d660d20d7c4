//! The decision log: one JSON line per decision, to an append-only file and/or stdout.
//!
//! Durability: records go to a writer thread that appends every record waiting, then
//! `fdatasync`s once for the batch (group commit) and only then acknowledges them. A
//! decision waits for its acknowledgement at most `timeout` (default 1 s): an
//! acknowledged record survives a crash, and a slow or broken disk delays admission by
//! that bound, never indefinitely (the decision then goes ahead and the lag is logged).
//!
//! Several processes may append to one file (the proxy, `serve`, every `portcullis hook`).
//! Each batch is one `write` under an exclusive `flock` of the file, so batches never
//! interleave. A writer killed inside its `write` (SIGKILL interrupts a regular-file write
//! between pages) leaves a torn last line whose records were never acknowledged; the next
//! batch from any process, under the same lock, cuts that fragment off (logging it) before
//! it appends, so every line of the file is one whole JSON record — without the cut, the
//! next record would be glued to the fragment and lost to every reader.

use std::io::Write;
use std::os::unix::fs::FileExt;
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
    // Readable too: a torn last line is read back before it is cut off.
    std::fs::OpenOptions::new()
        .create(true)
        .read(true)
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
            ok &= append_whole(f, &bytes)
                .inspect_err(|e| tracing::error!(error = %e, "writing the decision log"))
                .is_ok()
                && (!fsync || f.sync_data().is_ok());
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

/// Appends `bytes` (whole lines) under the file's exclusive lock, after cutting off a torn
/// last line some killed writer left.
fn append_whole(file: &mut std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    file.lock()?;
    let written = cut_torn_tail(file).and_then(|()| file.write_all(bytes));
    let _ = file.unlock();
    written
}

/// Truncates `file` after its last newline, if it does not end with one.
fn cut_torn_tail(file: &std::fs::File) -> std::io::Result<()> {
    const CHUNK: u64 = 4096;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    // Every batch asks this, and the answer is nearly always "whole": one byte tells.
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(());
    }
    let mut end = len;
    let mut chunk = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let buf = &mut chunk[..(end - start) as usize];
        file.read_exact_at(buf, start)?;
        if let Some(at) = buf.iter().rposition(|&b| b == b'\n') {
            end = start + at as u64 + 1;
            break;
        }
        end = start;
    }
    let mut fragment = vec![0u8; (len - end).min(64 << 10) as usize];
    file.read_exact_at(&mut fragment, end)?;
    tracing::warn!(
        bytes = len - end,
        fragment = %String::from_utf8_lossy(&fragment),
        "the decision log ended in a torn line (a writer was killed mid-write; its records were never acknowledged); cutting it off"
    );
    file.set_len(end)
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

    #[tokio::test]
    async fn a_torn_last_line_is_cut_off_and_writers_sharing_the_file_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        // A whole record, then one a killed writer left half-written.
        std::fs::write(&path, "{\"n\":\"before\"}\n{\"n\":\"torn\",\"po").unwrap();
        let config = DecisionLogConfig {
            file: Some(path.clone()),
            ..Default::default()
        };
        // Two logs on one file, as the proxy and `serve` (or hooks) may be.
        let logs = [
            DecisionLog::open(&config).unwrap().unwrap(),
            DecisionLog::open(&config).unwrap().unwrap(),
        ];
        let big = "x".repeat(10_000);
        let writes = (0..100).map(|i| {
            let (log, big) = (&logs[i % 2], &big);
            async move { log.append(&json!({"n": i, "pad": big})).await }
        });
        futures_util::future::join_all(writes).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:.80}")))
            .collect();
        assert_eq!(lines.len(), 101);
        assert_eq!(lines[0]["n"], "before");
        assert!(!text.contains("torn"));
    }
}
