//! What `portcullis audit` prints and exits with, and what the daemon's gauges hold: a
//! table with one row per violation, a JSON array with one record per container, the exit
//! code (every violation counts, `dryrun` and `warn` ones included, as Gatekeeper's audit
//! reports them all), and the count per policy and action.

use std::collections::BTreeMap;

use super::Audited;

const HEADERS: [&str; 6] = [
    "CONTAINER",
    "RUNTIME/NAMESPACE",
    "STATE",
    "POLICY",
    "ACTION",
    "MESSAGE",
];

/// One row per violation, columns aligned, then a summary line. Messages are on one line.
pub fn table(audited: &[Audited]) -> String {
    let mut rows: Vec<[String; 6]> = vec![HEADERS.map(String::from)];
    for a in audited {
        for v in &a.violations {
            rows.push([
                a.name.clone(),
                format!("{}/{}", a.runtime.as_str(), a.namespace),
                a.state.clone(),
                v.policy.clone(),
                v.action.clone(),
                v.message.split_whitespace().collect::<Vec<_>>().join(" "),
            ]);
        }
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    if rows.len() > 1 {
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(&format!("{cell}{}  ", " ".repeat(pad)));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out.push_str(&summary(audited));
    out.push('\n');
    out
}

/// `3 containers audited, 1 with violations (2 violations), 1 skipped`.
pub fn summary(audited: &[Audited]) -> String {
    let violating = audited.iter().filter(|a| !a.violations.is_empty()).count();
    let violations: usize = audited.iter().map(|a| a.violations.len()).sum();
    let skipped = audited.iter().filter(|a| a.skipped.is_some()).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{} audited, {violating} with violations ({}), {skipped} skipped",
        plural(audited.len(), "container"),
        plural(violations, "violation"),
    )
}

/// Why each skipped container was not judged, one line each (for stderr).
pub fn skipped_lines(audited: &[Audited]) -> Vec<String> {
    audited
        .iter()
        .filter_map(|a| {
            let why = a.skipped.as_ref()?;
            Some(format!(
                "{} ({}/{}, {}): not audited: {why}",
                a.name,
                a.runtime.as_str(),
                a.namespace,
                a.state
            ))
        })
        .collect()
}

/// The JSON report: every audited container, its violations (possibly none).
pub fn json(audited: &[Audited]) -> serde_json::Value {
    serde_json::to_value(audited).unwrap_or_default()
}

/// 1 when any container has a violation of any action, else 0.
pub fn exit_code(audited: &[Audited]) -> u8 {
    u8::from(audited.iter().any(|a| !a.violations.is_empty()))
}

/// Violations per (policy, action), for `portcullis_audit_violations`.
pub fn counts(audited: &[Audited]) -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    for v in audited.iter().flat_map(|a| &a.violations) {
        *counts
            .entry((v.policy.clone(), v.action.clone()))
            .or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Runtime, Violation};

    fn audited(name: &str, violations: &[(&str, &str, &str)]) -> Audited {
        Audited {
            runtime: Runtime::Containerd,
            address: "/run/containerd/containerd.sock".into(),
            namespace: "default".into(),
            id: name.into(),
            name: name.into(),
            state: "running".into(),
            image: "docker.io/library/busybox:1.36".into(),
            pod_namespace: "default".into(),
            pod_name: name.into(),
            violations: violations
                .iter()
                .map(|(p, a, m)| Violation {
                    policy: (*p).into(),
                    action: (*a).into(),
                    message: (*m).into(),
                })
                .collect(),
            skipped: None,
        }
    }

    #[test]
    fn the_table_has_one_aligned_row_per_violation_and_a_summary() {
        let all = [
            audited("good", &[]),
            audited(
                "bad",
                &[
                    (
                        "K8sPSPPrivilegedContainer/psp",
                        "deny",
                        "Privileged\ncontainer",
                    ),
                    ("pod-security", "dryrun", "privileged"),
                ],
            ),
        ];
        let t = table(&all);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("CONTAINER  RUNTIME/NAMESPACE   STATE    POLICY"));
        assert!(lines[1].starts_with("bad        containerd/default  running  K8sPSP"));
        assert!(lines[1].ends_with("deny    Privileged container"), "{t}");
        assert!(!t.contains("good"));
        assert_eq!(
            lines[3],
            "2 containers audited, 1 with violations (2 violations), 0 skipped"
        );
        assert_eq!(
            table(&[audited("good", &[])]),
            "1 container audited, 0 with violations (0 violations), 0 skipped\n"
        );
    }

    #[test]
    fn json_has_one_record_per_container_with_stable_names() {
        let mut skipped = audited("old", &[]);
        skipped.skipped = Some("not running".into());
        let v = json(&[audited("bad", &[("p", "warn", "m")]), skipped]);
        assert_eq!(v[0]["runtime"], "containerd");
        assert_eq!(v[0]["podNamespace"], "default");
        assert_eq!(v[0]["podName"], "bad");
        assert_eq!(v[0]["violations"][0]["action"], "warn");
        assert!(v[0].get("skipped").is_none());
        assert_eq!(v[1]["skipped"], "not running");
        let keys: Vec<&str> = v[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for k in ["address", "namespace", "id", "name", "state", "image"] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn every_action_counts_for_the_exit_code_and_the_gauges() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[audited("a", &[])]), 0);
        for action in ["deny", "warn", "dryrun", "error"] {
            assert_eq!(exit_code(&[audited("a", &[("p", action, "m")])]), 1);
        }
        let c = counts(&[
            audited("a", &[("p", "deny", "m")]),
            audited("b", &[("p", "deny", "m"), ("q", "dryrun", "m")]),
        ]);
        assert_eq!(c[&("p".into(), "deny".into())], 2);
        assert_eq!(c[&("q".into(), "dryrun".into())], 1);
    }

    #[test]
    fn skipped_containers_are_explained() {
        let mut s = audited("old", &[]);
        s.skipped = Some("not running".into());
        assert_eq!(
            skipped_lines(&[s]),
            ["old (containerd/default, running): not audited: not running"]
        );
    }
}
