//! Security profiles and the container's `securityContext`.

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{LinuxContainerSecurityContext, SeLinuxOption, SecurityProfile};
use serde_json::{json, Map, Value};

use super::CriError;
use crate::convert::caps;

fn profile(p: &SecurityProfile, field: &str) -> Result<Value, CriError> {
    Ok(match ProfileType::try_from(p.profile_type) {
        Ok(ProfileType::RuntimeDefault) => json!({"type": "RuntimeDefault"}),
        Ok(ProfileType::Unconfined) => json!({"type": "Unconfined"}),
        Ok(ProfileType::Localhost) => {
            json!({"type": "Localhost", "localhostProfile": p.localhost_ref})
        }
        Err(_) => {
            return Err(CriError::refused(
                format!("{field}.profile_type"),
                format!("{} is not a profile type this build knows", p.profile_type),
            ))
        }
    })
}

/// The deprecated string form (`runtime/default`, `unconfined`, `localhost/<ref>`).
fn deprecated(path: &str, field: &str) -> Result<Option<Value>, CriError> {
    Ok(Some(match path {
        "" => return Ok(None),
        "runtime/default" | "docker/default" => json!({"type": "RuntimeDefault"}),
        "unconfined" => json!({"type": "Unconfined"}),
        p => match p.strip_prefix("localhost/") {
            Some(r) => json!({"type": "Localhost", "localhostProfile": r}),
            None => return Err(CriError::refused(field, format!("unknown profile {p:?}"))),
        },
    }))
}

/// `seccompProfile`, or `None` for unconfined. The kubelet sends `Unconfined` for a Pod
/// that names no profile (unless it runs with `--seccomp-default`), and containerd leaves
/// a container without one unconfined: both are the Pod without `seccompProfile`, which
/// is what Kubernetes admitted (baseline allows it; restricted does not). Showing them as
/// an explicit `Unconfined` would refuse nearly every pod at baseline that the API server
/// accepted, for no difference in what the container can do.
pub(crate) fn seccomp(
    p: Option<&SecurityProfile>,
    path: &str,
    field: &str,
) -> Result<Option<Value>, CriError> {
    let shown = match p {
        Some(p) => Some(profile(p, &format!("{field}.seccomp"))?),
        None => deprecated(path, &format!("{field}.seccomp_profile_path"))?,
    };
    Ok(shown.filter(|v| v["type"] != "Unconfined"))
}

/// `appArmorProfile`; absent is the runtime's default, shown as absent.
pub(crate) fn apparmor(
    p: Option<&SecurityProfile>,
    name: &str,
    field: &str,
) -> Result<Option<Value>, CriError> {
    match p {
        Some(p) => profile(p, &format!("{field}.apparmor")).map(Some),
        None => deprecated(name, &format!("{field}.apparmor_profile")),
    }
}

pub(crate) fn selinux(o: Option<&SeLinuxOption>) -> Option<Value> {
    let o = o?;
    let mut out = Map::new();
    for (k, v) in [
        ("user", &o.user),
        ("role", &o.role),
        ("type", &o.r#type),
        ("level", &o.level),
    ] {
        if !v.is_empty() {
            out.insert(k.into(), v.clone().into());
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn k8s_caps<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = names.map(|c| caps::to_k8s(c)).collect();
    v.sort();
    v.dedup();
    v
}

/// The container's `securityContext`; `privileged` already includes host power.
#[allow(deprecated)] // the deprecated profile fields are still honoured by runtimes
pub(crate) fn container_context(
    sc: &LinuxContainerSecurityContext,
    privileged: bool,
    field: &str,
) -> Result<Value, CriError> {
    let mut out = Map::new();
    out.insert("privileged".into(), privileged.into());
    let c = sc.capabilities.clone().unwrap_or_default();
    let add = k8s_caps(c.add_capabilities.iter().chain(&c.add_ambient_capabilities));
    let drop = k8s_caps(c.drop_capabilities.iter());
    let mut capabilities = Map::new();
    if !add.is_empty() {
        capabilities.insert("add".into(), add.into());
    }
    if !drop.is_empty() {
        capabilities.insert("drop".into(), drop.into());
    }
    out.insert("capabilities".into(), Value::Object(capabilities));
    if let Some(u) = &sc.run_as_user {
        out.insert("runAsUser".into(), u.value.into());
        out.insert("runAsNonRoot".into(), (u.value != 0).into());
    }
    if let Some(g) = &sc.run_as_group {
        out.insert("runAsGroup".into(), g.value.into());
    }
    out.insert("allowPrivilegeEscalation".into(), (!sc.no_new_privs).into());
    out.insert("readOnlyRootFilesystem".into(), sc.readonly_rootfs.into());
    let unmasked = sc.masked_paths.is_empty() && sc.readonly_paths.is_empty();
    let proc_mount = if unmasked && !privileged {
        "Unmasked"
    } else {
        "Default"
    };
    out.insert("procMount".into(), proc_mount.into());
    if let Some(profile) = seccomp(sc.seccomp.as_ref(), &sc.seccomp_profile_path, field)? {
        out.insert("seccompProfile".into(), profile);
    }
    if let Some(a) = apparmor(sc.apparmor.as_ref(), &sc.apparmor_profile, field)? {
        out.insert("appArmorProfile".into(), a);
    }
    if let Some(s) = selinux(sc.selinux_options.as_ref()) {
        out.insert("seLinuxOptions".into(), s);
    }
    Ok(Value::Object(out))
}
