//! The restricted checks (`policy/check_*.go` with `Level: api.LevelRestricted`), each
//! with its versions and the baseline checks it overrides. [`CHECKS`] is sorted by ID,
//! the order in which upstream reports them (after the baseline checks).

use super::baseline::proc_mount;
use super::profiles::{explicit_bad_seccomp, seccomp_forbidden, valid_seccomp};
use super::view::{containers_phrase, get, join_quote, list, pluralize, text, Pod, Set};
use super::{since, Check, Forbidden, Versioned};

pub(super) static CHECKS: &[Check] = &[
    Check {
        id: "allowPrivilegeEscalation",
        // The field exists since 1.8; from 1.25 Windows Pods are exempt.
        versions: &[
            since(8, allow_privilege_escalation),
            since(25, allow_privilege_escalation_1_25),
        ],
    },
    Check {
        id: "capabilities_restricted",
        versions: &[
            overriding(22, capabilities_restricted, &["capabilities_baseline"]),
            overriding(25, capabilities_restricted_1_25, &["capabilities_baseline"]),
        ],
    },
    Check {
        id: "procMount_restricted",
        // Baseline relaxes procMount for user-namespace Pods in 1.35; restricted does not.
        versions: &[overriding(35, proc_mount, &["procMount"])],
    },
    Check {
        id: "restrictedVolumes",
        versions: &[overriding(0, restricted_volumes, &["hostPathVolumes"])],
    },
    Check {
        id: "runAsNonRoot",
        versions: &[since(0, run_as_non_root), since(35, run_as_non_root_1_35)],
    },
    Check {
        id: "runAsUser",
        versions: &[since(23, run_as_user), since(35, run_as_user_1_35)],
    },
    Check {
        id: "seccompProfile_restricted",
        versions: &[
            overriding(19, seccomp_profile_restricted, &["seccompProfile_baseline"]),
            overriding(
                25,
                seccomp_profile_restricted_1_25,
                &["seccompProfile_baseline"],
            ),
        ],
    },
];

const fn overriding(
    since: u32,
    check: super::CheckFn,
    overrides: &'static [&'static str],
) -> Versioned {
    Versioned {
        since,
        check,
        overrides,
    }
}

fn allow_privilege_escalation(pod: &Pod) -> Option<Forbidden> {
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| {
            c.security(&["allowPrivilegeEscalation"])
                .and_then(|v| v.as_bool())
                != Some(false)
        })
        .map(|c| c.name())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Forbidden::new(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

fn allow_privilege_escalation_1_25(pod: &Pod) -> Option<Forbidden> {
    if pod.is_windows() {
        return None;
    }
    allow_privilege_escalation(pod)
}

fn capabilities_restricted(pod: &Pod) -> Option<Forbidden> {
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden = Set::new();
    for c in pod.containers() {
        let Some(caps) = c.security(&["capabilities"]) else {
            missing_drop_all.push(c.name());
            continue;
        };
        if !list(caps, &["drop"]).iter().any(|cap| text(cap) == "ALL") {
            missing_drop_all.push(c.name());
        }
        let mut added_forbidden = false;
        for cap in list(caps, &["add"]) {
            if text(cap) != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden.insert(text(cap));
            }
        }
        if added_forbidden {
            adding_forbidden.push(c.name());
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(forbidden)
        ));
    }
    if details.is_empty() {
        return None;
    }
    Forbidden::new("unrestricted capabilities", details.join("; "))
}

fn capabilities_restricted_1_25(pod: &Pod) -> Option<Forbidden> {
    if pod.is_windows() {
        return None;
    }
    capabilities_restricted(pod)
}

/// The first volume source of a volume the restricted level refuses, in upstream's order
/// (`unknown` for a volume with no source this list knows).
const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "nfs",
    "iscsi",
    "glusterfs",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "fc",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "portworxVolume",
    "scaleIO",
    "storageos",
];

/// `image` was added to the 1.0 revision (upstream 1.33), so it holds at every version.
const ALLOWED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn restricted_volumes(pod: &Pod) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut types = Set::new();
    for volume in list(pod.spec, &["volumes"]) {
        if implicit_empty_dir(volume)
            || ALLOWED_VOLUME_TYPES
                .iter()
                .any(|t| get(volume, &[t]).is_some())
        {
            continue;
        }
        bad.push(super::view::get_str(volume, &["name"]).unwrap_or(""));
        let kind = RESTRICTED_VOLUME_TYPES
            .iter()
            .find(|t| get(volume, &[t]).is_some())
            .copied()
            .unwrap_or("unknown");
        types.insert(kind);
    }
    if bad.is_empty() {
        return None;
    }
    Forbidden::new(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                types.len()
            ),
            join_quote(&types)
        ),
    )
}

/// A volume with no source at all is an `emptyDir`: the API server defaults it so
/// (`SetDefaults_Volume`) before Pod Security sees it. Any other field, even one this
/// list does not know (a newer volume type), keeps it a volume to judge.
fn implicit_empty_dir(volume: &serde_json::Value) -> bool {
    volume
        .as_object()
        .is_none_or(|map| map.iter().all(|(k, v)| k == "name" || v.is_null()))
}

fn run_as_non_root(pod: &Pod) -> Option<Forbidden> {
    let pod_value = pod.security(&["runAsNonRoot"]).and_then(|v| v.as_bool());
    let pod_non_root = pod_value == Some(true);
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match c.security(&["runAsNonRoot"]).and_then(|v| v.as_bool()) {
            Some(false) => explicit.push(c.name()),
            Some(true) => {}
            None if !pod_non_root => implicit.push(c.name()),
            None => {}
        }
    }
    let mut setters = Vec::new();
    if pod_value == Some(false) {
        setters.push("pod".to_string());
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return Forbidden::new(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        );
    }
    if !implicit.is_empty() {
        return Forbidden::new(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        );
    }
    None
}

/// 1.35: a Pod in a user namespace is not root on the host (KEP-127).
fn run_as_non_root_1_35(pod: &Pod) -> Option<Forbidden> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_non_root(pod)
}

fn run_as_user(pod: &Pod) -> Option<Forbidden> {
    let root = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_i64()) == Some(0);
    let mut setters = Vec::new();
    if root(pod.security(&["runAsUser"])) {
        setters.push("pod".to_string());
    }
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| root(c.security(&["runAsUser"])))
        .map(|c| c.name())
        .collect();
    if !containers.is_empty() {
        setters.push(containers_phrase(&containers));
    }
    if setters.is_empty() {
        return None;
    }
    Forbidden::new(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    )
}

/// 1.35: uid 0 in a user namespace is not root on the host (KEP-127).
fn run_as_user_1_35(pod: &Pod) -> Option<Forbidden> {
    if pod.in_user_namespace() {
        return None;
    }
    run_as_user(pod)
}

fn seccomp_profile_restricted(pod: &Pod) -> Option<Forbidden> {
    let (setters, types) = explicit_bad_seccomp(pod);
    if !setters.is_empty() {
        return seccomp_forbidden(&setters, &types);
    }
    // Containers without a profile of their own need a valid pod-level one.
    let pod_set = pod.security(&["seccompProfile"]).is_some_and(valid_seccomp);
    let implicit: Vec<&str> = pod
        .containers()
        .filter(|c| !pod_set && c.security(&["seccompProfile"]).is_none())
        .map(|c| c.name())
        .collect();
    if implicit.is_empty() {
        return None;
    }
    Forbidden::new(
        "seccompProfile",
        format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            containers_phrase(&implicit)
        ),
    )
}

fn seccomp_profile_restricted_1_25(pod: &Pod) -> Option<Forbidden> {
    if pod.is_windows() {
        return None;
    }
    seccomp_profile_restricted(pod)
}
