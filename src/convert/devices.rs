//! Device access beyond what every runtime gives a container (runtime-spec config-linux.md
//! "Devices" and "Device allowlist").
//!
//! The default set is runc's own (`libcontainer/specconv` `AllowedDevices`) and what docker,
//! ctr and podman put in the captured specs (shared/fixtures/runtime-specs): the character
//! devices null 1:3, zero 1:5, full 1:7, random 1:8, urandom 1:9, tty 5:0, console 5:1,
//! ptmx 5:2, net/tun 10:200 and the pseudo-terminals 136:*, plus `mknod` (access `m` alone)
//! of anything, which creates a node that cannot be opened. Any other device node or allow
//! rule — a block device, a wildcard, `/dev/fuse` — is direct access to host hardware or
//! kernel interfaces, which a Pod may only have by being privileged.

use super::spec::{ConvertError, Node};

/// `(major, minor)` of the default character devices; `None`: any minor.
const DEFAULT_CHAR: [(i64, Option<i64>); 10] = [
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(1)),
    (5, Some(2)),
    (10, Some(200)),
    (136, None),
];

/// A number that is absent or `-1` is a wildcard in device rules.
fn number(n: &Node<'_>) -> Result<Option<i64>, ConvertError> {
    Ok(n.i64()?.filter(|v| *v != -1))
}

fn is_default_char(major: Option<i64>, minor: Option<i64>) -> bool {
    DEFAULT_CHAR.iter().any(|(ma, mi)| {
        Some(*ma) == major
            && match mi {
                None => true,
                Some(mi) => Some(*mi) == minor,
            }
    })
}

/// A deny rule for every device (no type or `a`, wildcard numbers): it resets the list, so
/// only the rules after the last one count (runc's device emulator).
fn is_deny_all(rule: &Node<'_>) -> Result<bool, ConvertError> {
    Ok(!rule.get("allow").bool()?.unwrap_or(false)
        && matches!(rule.get("type").str()?, None | Some("a"))
        && number(&rule.get("major"))?.is_none()
        && number(&rule.get("minor"))?.is_none())
}

/// Sentences naming each `linux.devices[i]` and `linux.resources.devices[i]` beyond the
/// default set.
pub(crate) fn beyond_defaults(root: &Node<'_>) -> Result<Vec<String>, ConvertError> {
    let mut out = Vec::new();
    for (i, d) in root.path("linux.devices").items()?.iter().enumerate() {
        let kind = d.get("type").str()?.unwrap_or_default();
        let (major, minor) = (d.get("major").i64()?, d.get("minor").i64()?);
        // A FIFO is not a device of the host; `u` is an unbuffered character device.
        let default = kind == "p" || (matches!(kind, "c" | "u") && is_default_char(major, minor));
        if !default {
            let path = d.get("path").str()?.unwrap_or_default();
            out.push(format!(
                "`linux.devices[{i}]` ({path}, {kind} {}:{}) is a host device beyond the runtime defaults",
                shown(major),
                shown(minor)
            ));
        }
    }
    let rules = root.path("linux.resources.devices").items()?;
    let mut start = 0;
    for (i, r) in rules.iter().enumerate() {
        if is_deny_all(r)? {
            start = i + 1;
        }
    }
    for (i, r) in rules.iter().enumerate().skip(start) {
        if !r.get("allow").bool()?.unwrap_or(false) {
            continue;
        }
        let access = r.get("access").str()?.unwrap_or("rwm");
        let kind = r.get("type").str()?.unwrap_or("a");
        let (major, minor) = (number(&r.get("major"))?, number(&r.get("minor"))?);
        let mknod_only = !access.is_empty() && access.bytes().all(|b| b == b'm');
        if !(mknod_only || (kind == "c" && is_default_char(major, minor))) {
            out.push(format!(
                "`linux.resources.devices[{i}]` allows {kind} {}:{} {access}, beyond the runtime defaults",
                shown(major),
                shown(minor)
            ));
        }
    }
    Ok(out)
}

fn shown(n: Option<i64>) -> String {
    n.filter(|v| *v != -1)
        .map_or_else(|| "*".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn beyond(spec: Value) -> Vec<String> {
        beyond_defaults(&Node::root(&spec).unwrap()).unwrap()
    }

    fn rules(r: Value) -> Vec<String> {
        beyond(json!({"linux": {"resources": {"devices": r}}}))
    }

    #[test]
    fn default_rules_pass() {
        let ctr = json!([{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "minor": -1, "access": "rw"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "major": -1, "minor": -1, "access": "m"},
            {"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]);
        assert!(rules(ctr).is_empty());
        assert!(rules(json!([{"allow": false, "access": "rwm"}])).is_empty());
    }

    #[test]
    fn allow_rules_beyond_the_defaults() {
        for rule in [
            json!({"allow": true, "type": "b", "access": "rwm"}),
            json!({"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}),
            json!({"allow": true, "type": "c", "access": "rwm"}),
            json!({"allow": true, "type": "c", "major": 1, "access": "rw"}),
            json!({"allow": true, "type": "c", "major": 1, "minor": -1, "access": "rw"}),
            json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
            json!({"allow": true, "access": "rwm"}),
            json!({"allow": true, "type": "a"}),
            json!({"allow": true, "type": "c", "major": 1, "minor": 3}),
            json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": ""}),
        ] {
            let r = rules(json!([{"allow": false, "access": "rwm"}, rule.clone()]));
            let has_default = rule["major"] == 1 && rule["minor"] == 3;
            assert_eq!(r.len(), usize::from(!has_default), "{rule}");
        }
        // A rule before a deny-all is reset by it; one after is not.
        let reset =
            json!([{"allow": true, "type": "b", "access": "rwm"}, {"allow": false, "type": "a"}]);
        assert!(rules(reset).is_empty());
        let after =
            json!([{"allow": false, "type": "a"}, {"allow": true, "type": "b", "access": "rwm"}]);
        assert_eq!(rules(after).len(), 1);
        // Without any deny-all rule every allow rule still counts.
        assert_eq!(
            rules(json!([{"allow": true, "type": "b", "access": "rwm"}])).len(),
            1
        );
    }

    #[test]
    fn device_nodes_beyond_the_defaults() {
        let d = |kind: &str, major: i64, minor: i64| json!({"linux": {"devices": [{"path": "/dev/x", "type": kind, "major": major, "minor": minor}]}});
        assert!(beyond(d("c", 1, 3)).is_empty(), "docker --device /dev/null");
        assert!(beyond(d("u", 136, 4)).is_empty());
        assert!(beyond(d("p", 0, 0)).is_empty());
        let r = beyond(d("b", 254, 0));
        assert!(
            r[0].contains("`linux.devices[0]` (/dev/x, b 254:0)"),
            "{r:?}"
        );
        assert_eq!(beyond(d("c", 10, 229)).len(), 1, "/dev/fuse");
        assert_eq!(beyond(d("c", 1, 11)).len(), 1, "/dev/kmsg");
        let r = beyond(json!({"linux": {"devices": [{"path": "/dev/y", "type": "c"}]}}));
        assert!(r[0].contains("c *:*"), "{r:?}");
    }

    #[test]
    fn malformed_rules_name_the_field() {
        let spec = json!({"linux": {"resources": {"devices": [{"allow": "yes"}]}}});
        let e = beyond_defaults(&Node::root(&spec).unwrap()).unwrap_err();
        assert!(
            e.to_string().contains("`linux.resources.devices[0].allow`"),
            "{e}"
        );
    }
}
