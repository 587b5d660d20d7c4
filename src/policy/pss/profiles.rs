//! The baseline checks that judge security profiles set on the Pod or its containers:
//! AppArmor, SELinux and seccomp (`check_appArmorProfile.go`, `check_seLinuxOptions.go`,
//! `check_seccompProfile_baseline.go`). The seccomp helpers are shared with the
//! restricted `seccompProfile_restricted`.

use super::view::{get_str, go_quote, join_quote, pluralize, setters, Container, Pod, Set};
use super::Forbidden;

pub(super) fn app_armor_profile<'a>(pod: &Pod<'a>) -> Option<Forbidden> {
    let allowed = |profile: &serde_json::Value| {
        matches!(
            get_str(profile, &["type"]).unwrap_or(""),
            "RuntimeDefault" | "Localhost"
        )
    };
    let mut bad_values = Set::new();
    let mut bad = |profile: Option<&'a serde_json::Value>| match profile {
        Some(p) if !allowed(p) => {
            bad_values.insert(get_str(p, &["type"]).unwrap_or(""));
            true
        }
        _ => false,
    };
    let bad_pod = bad(pod.security(&["appArmorProfile"]));
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| bad(c.security(&["appArmorProfile"])))
        .map(|c| c.name())
        .collect();
    let mut setters = setters(bad_pod, &containers);
    let mut values: Vec<String> = bad_values.into_iter().map(String::from).collect();

    // The deprecated beta annotations still count (`allowedAnnotationValue`).
    let mut annotations: Vec<String> = pod
        .annotations()
        .filter(|(k, v)| {
            k.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && !(v.is_empty() || *v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    annotations.sort();
    if !annotations.is_empty() {
        setters.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    if setters.is_empty() {
        return None;
    }
    Forbidden::new(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    )
}

const SELINUX_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const SELINUX_TYPES_1_31: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

pub(super) fn se_linux_options_1_0(pod: &Pod) -> Option<Forbidden> {
    se_linux_options(pod, SELINUX_TYPES_1_0)
}

/// 1.31 allows `container_engine_t`.
pub(super) fn se_linux_options_1_31(pod: &Pod) -> Option<Forbidden> {
    se_linux_options(pod, SELINUX_TYPES_1_31)
}

fn se_linux_options<'a>(pod: &Pod<'a>, allowed: &[&str]) -> Option<Forbidden> {
    let mut types = Set::new();
    let (mut user, mut role) = (false, false);
    let mut bad = |opts: Option<&'a serde_json::Value>| {
        let Some(opts) = opts else { return false };
        let mut valid = true;
        let t = get_str(opts, &["type"]).unwrap_or("");
        if !allowed.contains(&t) {
            valid = false;
            types.insert(t);
        }
        if !get_str(opts, &["user"]).unwrap_or("").is_empty() {
            valid = false;
            user = true;
        }
        if !get_str(opts, &["role"]).unwrap_or("").is_empty() {
            valid = false;
            role = true;
        }
        !valid
    };
    let bad_pod = bad(pod.security(&["seLinuxOptions"]));
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| bad(c.security(&["seLinuxOptions"])))
        .map(|c| c.name())
        .collect();
    let setters = setters(bad_pod, &containers);
    if setters.is_empty() {
        return None;
    }
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_string());
    }
    if role {
        data.push("role may not be set".to_string());
    }
    Forbidden::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    )
}

/// Before 1.19 seccomp was set by alpha annotations.
pub(super) fn seccomp_profile_annotations(pod: &Pod) -> Option<Forbidden> {
    const POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
    const CONTAINER: &str = "container.seccomp.security.alpha.kubernetes.io/";
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden = std::collections::BTreeSet::new();
    let mut judge = |key: String| {
        if let Some(v) = pod.annotation(&key) {
            if !valid(v) {
                forbidden.insert(format!("{key}={}", go_quote(v)));
            }
        }
    };
    judge(POD.to_string());
    for c in pod.containers() {
        judge(format!("{CONTAINER}{}", c.name()));
    }
    if forbidden.is_empty() {
        return None;
    }
    let forbidden: Vec<String> = forbidden.into_iter().collect();
    Forbidden::new(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", forbidden.len()),
            forbidden.join(", ")
        ),
    )
}

/// `RuntimeDefault` and `Localhost` are the allowed seccomp profile types.
pub(super) fn valid_seccomp(profile: &serde_json::Value) -> bool {
    matches!(
        get_str(profile, &["type"]).unwrap_or(""),
        "RuntimeDefault" | "Localhost"
    )
}

/// Who explicitly sets a bad `seccompProfile.type`, and the bad types (shared with the
/// restricted check).
pub(super) fn explicit_bad_seccomp<'a>(pod: &Pod<'a>) -> (Vec<String>, Set<'a>) {
    let mut types = Set::new();
    let mut bad = |profile: Option<&'a serde_json::Value>| match profile {
        Some(p) if !valid_seccomp(p) => {
            types.insert(get_str(p, &["type"]).unwrap_or(""));
            true
        }
        _ => false,
    };
    let bad_pod = bad(pod.security(&["seccompProfile"]));
    let containers: Vec<&str> = pod
        .containers()
        .filter(|c| bad(c.security(&["seccompProfile"])))
        .map(|c: Container| c.name())
        .collect();
    (setters(bad_pod, &containers), types)
}

pub(super) fn seccomp_forbidden(setters: &[String], types: &Set) -> Option<Forbidden> {
    Forbidden::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(types)
        ),
    )
}

/// 1.19: the `seccompProfile` fields.
pub(super) fn seccomp_profile_baseline(pod: &Pod) -> Option<Forbidden> {
    let (setters, types) = explicit_bad_seccomp(pod);
    if setters.is_empty() {
        return None;
    }
    seccomp_forbidden(&setters, &types)
}
