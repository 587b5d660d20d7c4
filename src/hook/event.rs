//! Lifecycle events the hook sends to the daemon's `/events` at `createRuntime` and
//! `poststop` (the daemon logs them and streams them as JSON lines to subscribers):
//!
//! `{"stage", "id", "pid", "bundle", "namespaces": {name: "/proc/PID/ns/<name> link"},
//!   "image", "annotations", "verdict": {"allowed", "message"}, "time"}`

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};

use super::state::{Stage, State};

/// The event for `state` at `stage`; `image` from the bundle's spec (empty when unknown),
/// `verdict` when the hook decided.
pub fn lifecycle_event(
    stage: Stage,
    state: &State,
    image: &str,
    verdict: Option<(bool, &str)>,
) -> Value {
    let namespaces = state.pid.map(namespaces).unwrap_or_default();
    json!({
        "stage": stage.as_str(),
        "id": state.id,
        "pid": state.pid,
        "bundle": state.bundle,
        "namespaces": namespaces,
        "image": image,
        "annotations": state.annotations,
        "verdict": verdict.map(|(allowed, message)| json!({"allowed": allowed, "message": message})),
        "time": humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
    })
}

/// `/proc/PID/ns/*` link targets, e.g. `{"pid": "pid:[4026532283]"}`; empty when the
/// process is gone.
pub fn namespaces(pid: u32) -> BTreeMap<String, String> {
    namespaces_in(&Path::new("/proc").join(pid.to_string()).join("ns"))
}

fn namespaces_in(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_carries_namespaces_and_verdict() {
        let state = State::parse(&format!(
            r#"{{"id": "c1", "status": "creating", "pid": {}, "bundle": "/b", "annotations": {{"a": "b"}}}}"#,
            std::process::id()
        ))
        .unwrap();
        let e = lifecycle_event(Stage::CreateRuntime, &state, "busybox", Some((false, "no")));
        assert_eq!(e["stage"], "createRuntime");
        assert!(
            e["namespaces"]["pid"]
                .as_str()
                .unwrap()
                .starts_with("pid:["),
            "{e}"
        );
        assert_eq!(e["verdict"], json!({"allowed": false, "message": "no"}));
        assert_eq!(e["annotations"]["a"], "b");

        let stopped = State::parse(r#"{"id": "c1", "status": "stopped", "bundle": "/b"}"#).unwrap();
        let e = lifecycle_event(Stage::Poststop, &stopped, "", None);
        assert_eq!(
            (e["pid"].clone(), e["namespaces"].clone()),
            (Value::Null, json!({}))
        );
    }
}
