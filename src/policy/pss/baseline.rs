//! The baseline checks (`policy/check_*.go` with `Level: api.LevelBaseline`), each with
//! the versions in which upstream changed it. [`CHECKS`] is sorted by ID, the order in
//! which upstream reports them.

use super::profiles::{
    app_armor_profile, se_linux_options_1_0, se_linux_options_1_31, seccomp_profile_annotations,
    seccomp_profile_baseline,
};
use super::view::{
    containers_phrase, get, get_bool, get_str, join_quote, list, pluralize, setters, text, Pod, Set,
};
use super::{since, Check, Forbidden};

pub(super) static CHECKS: &[Check] = &[
    Check {
        id: "appArmorProfile",
        versions: &[since(0, app_armor_profile)],
    },
    Check {
        id: "capabilities_baseline",
        versions: &[since(0, capabilities_baseline)],
    },
    Check {
        id: "hostNamespaces",
        versions: &[since(0, host_namespaces)],
    },
    Check {
        id: "hostPathVolumes",
        versions: &[since(0, host_path_volumes)],
    },
    Check {
        id: "hostPorts",
        versions: &[since(0, host_ports)],
    },
    Check {
        id: "hostProbesAndHostLifecycle",
        versions: &[since(34, host_probes_and_host_lifecycle)],
    },
    Check {
        id: "privileged",
        versions: &[since(0, privileged)],
    },
    Check {
        id: "procMount",
        versions: &[since(0, proc_mount), since(35, proc_mount_1_35)],
    },
    Check {
        id: "seLinuxOptions",
        versions: &[
            since(0, se_linux_options_1_0),
            since(31, se_linux_options_1_31),
        ],
    },
    Check {
        id: "seccompProfile_baseline",
        versions: &[
            since(0, seccomp_profile_annotations),
            since(19, seccomp_profile_baseline),
        ],
    },
    Check {
        id: "sysctls",
        versions: &[
            since(0, sysctls_1_0),
            since(27, sysctls_1_27),
            since(29, sysctls_1_29),
            since(32, sysctls_1_32),
            since(37, sysctls_1_37),
        ],
    },
    Check {
        id: "windowsHostProcess",
        versions: &[since(0, windows_host_process)],
    },
];

const CAPABILITIES_ALLOWED: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities_baseline(pod: &Pod) -> Option<Forbidden> {
    let mut bad_containers = Vec::new();
    let mut caps = Set::new();
    for c in pod.containers() {
        let mut valid = true;
        for cap in list(c.value, &["securityContext", "capabilities", "add"]) {
            if !CAPABILITIES_ALLOWED.contains(&text(cap)) {
                valid = false;
                caps.insert(text(cap));
            }
        }
        if !valid {
            bad_containers.push(c.name());
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Forbidden::new(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad_containers),
            join_quote(caps)
        ),
    )
}

fn host_namespaces(pod: &Pod) -> Option<Forbidden> {
    // Sorted, as upstream lists a set.
    let used: Vec<&str> = ["hostIPC", "hostNetwork", "hostPID"]
        .into_iter()
        .filter(|ns| get_bool(pod.spec, &[ns]) == Some(true))
        .collect();
    if used.is_empty() {
        return None;
    }
    let detail: Vec<String> = used.iter().map(|ns| format!("{ns}=true")).collect();
    Forbidden::new("host namespaces", detail.join(", "))
}

fn host_path_volumes(pod: &Pod) -> Option<Forbidden> {
    let volumes: Vec<&str> = list(pod.spec, &["volumes"])
        .iter()
        .filter(|v| get(v, &["hostPath"]).is_some())
        .map(|v| get_str(v, &["name"]).unwrap_or(""))
        .collect();
    if volumes.is_empty() {
        return None;
    }
    Forbidden::new(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", volumes.len()),
            join_quote(&volumes)
        ),
    )
}

fn host_ports(pod: &Pod) -> Option<Forbidden> {
    // With hostNetwork the API server defaults each unset hostPort of a (init) container
    // to its containerPort (`SetDefaults_Pod`); ephemeral containers have no ports.
    let host_network = get_bool(pod.spec, &["hostNetwork"]) == Some(true);
    let mut bad_containers = Vec::new();
    let mut ports = std::collections::BTreeSet::new();
    for c in pod.containers() {
        let mut valid = true;
        for port in list(c.value, &["ports"]) {
            let host_port = match get(port, &["hostPort"]) {
                Some(p) if p.as_i64() != Some(0) => Some(p),
                _ if host_network => get(port, &["containerPort"]),
                _ => None,
            };
            match host_port {
                Some(p) if p.as_i64() != Some(0) => {
                    valid = false;
                    ports.insert(p.to_string()); // sorted as strings, as upstream does
                }
                _ => {}
            }
        }
        if !valid {
            bad_containers.push(c.name());
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    Forbidden::new(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

fn host_probes_and_host_lifecycle(pod: &Pod) -> Option<Forbidden> {
    let mut bad_containers = Set::new();
    let mut hosts = Set::new();
    for c in pod.containers() {
        let handlers = [
            &["livenessProbe"][..],
            &["readinessProbe"],
            &["startupProbe"],
            &["lifecycle", "postStart"],
            &["lifecycle", "preStop"],
        ];
        for handler in handlers.iter().filter_map(|path| get(c.value, path)) {
            for kind in ["httpGet", "tcpSocket"] {
                match get_str(handler, &[kind, "host"]) {
                    Some(host) if !host.is_empty() => {
                        bad_containers.insert(c.name());
                        hosts.insert(host);
                    }
                    _ => {}
                }
            }
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    Forbidden::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
    )
}

fn privileged(pod: &Pod) -> Option<Forbidden> {
    let bad: Vec<&str> = pod
        .containers()
        .filter(|c| c.security(&["privileged"]).and_then(|v| v.as_bool()) == Some(true))
        .map(|c| c.name())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Forbidden::new(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

/// `procMount_1_0`: only `Default` (or unset). Also the restricted `procMount_restricted`.
pub(super) fn proc_mount(pod: &Pod) -> Option<Forbidden> {
    let mut bad = Vec::new();
    let mut types = Set::new();
    for c in pod.containers() {
        match c.security(&["procMount"]).map(text) {
            Some(t) if t != "Default" => {
                bad.push(c.name());
                types.insert(t);
            }
            _ => {}
        }
    }
    if bad.is_empty() {
        return None;
    }
    Forbidden::new(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(types)
        ),
    )
}

/// 1.35: a Pod in a user namespace may unmask /proc (KEP-127).
fn proc_mount_1_35(pod: &Pod) -> Option<Forbidden> {
    if pod.in_user_namespace() {
        return None;
    }
    proc_mount(pod)
}

const SYSCTLS_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SYSCTLS_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SYSCTLS_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SYSCTLS_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
const SYSCTLS_1_37: &[&str] = &[
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

fn sysctls_1_0(pod: &Pod) -> Option<Forbidden> {
    sysctls(pod, &[SYSCTLS_1_0])
}

fn sysctls_1_27(pod: &Pod) -> Option<Forbidden> {
    sysctls(pod, &[SYSCTLS_1_0, SYSCTLS_1_27])
}

fn sysctls_1_29(pod: &Pod) -> Option<Forbidden> {
    sysctls(pod, &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29])
}

fn sysctls_1_32(pod: &Pod) -> Option<Forbidden> {
    sysctls(
        pod,
        &[SYSCTLS_1_0, SYSCTLS_1_27, SYSCTLS_1_29, SYSCTLS_1_32],
    )
}

fn sysctls_1_37(pod: &Pod) -> Option<Forbidden> {
    let all = [
        SYSCTLS_1_0,
        SYSCTLS_1_27,
        SYSCTLS_1_29,
        SYSCTLS_1_32,
        SYSCTLS_1_37,
    ];
    sysctls(pod, &all)
}

/// Only pod-level sysctls exist; each must be in one of the `allowed` lists.
fn sysctls(pod: &Pod, allowed: &[&[&str]]) -> Option<Forbidden> {
    let forbidden: Vec<&str> = pod
        .security(&["sysctls"])
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .map(|s| get_str(s, &["name"]).unwrap_or(""))
        .filter(|name| !allowed.iter().any(|list| list.contains(name)))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    Forbidden::new("forbidden sysctls", forbidden.join(", "))
}

fn windows_host_process(pod: &Pod) -> Option<Forbidden> {
    let host_process = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_bool()) == Some(true);
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| host_process(c.security(&["windowsOptions", "hostProcess"])))
        .map(|c| c.name())
        .collect();
    let bad_pod = host_process(pod.security(&["windowsOptions", "hostProcess"]));
    let setters = setters(bad_pod, &containers);
    if setters.is_empty() {
        return None;
    }
    Forbidden::new(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    )
}
