//! Write-back of the security contexts: the Pod's `spec.securityContext` into the sandbox's
//! `linux.security_context` and `linux.sysctls` (as `sandbox.rs` reads them), the
//! container's `securityContext` into its `linux.security_context` (as `security.rs` reads
//! it). Where the view derives a field from others (`privileged` from host power,
//! `procMount` from the masked paths, `runAsNonRoot` from the uid), a change is written only
//! when the view reads it back as changed.

use std::collections::HashMap;

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    ContainerConfig, Int64Value, LinuxContainerSecurityContext, LinuxSandboxSecurityContext,
    MountPropagation, PodSandboxConfig, SeLinuxOption, SecurityProfile,
};
use serde_json::Value;

use super::writeback::{refused, Field, Refused, Writer};
use crate::convert::caps;
use crate::convert::pod::PRIVILEGED_REASONS_ANNOTATION;

/// The kubelet's `/proc` paths for `procMount: Default` (kubernetes
/// `pkg/securitycontext/util.go`), which it sends for every container not `Unmasked`.
const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
const PROC_MOUNT: &str = "/spec/containers/0/securityContext/procMount";

fn sandbox_sc(c: &mut PodSandboxConfig) -> &mut LinuxSandboxSecurityContext {
    let linux = c.linux.get_or_insert_with(Default::default);
    linux.security_context.get_or_insert_with(Default::default)
}

fn container_sc(c: &mut ContainerConfig) -> &mut LinuxContainerSecurityContext {
    let linux = c.linux.get_or_insert_with(Default::default);
    linux.security_context.get_or_insert_with(Default::default)
}

fn profile(t: ProfileType, localhost_ref: String) -> SecurityProfile {
    SecurityProfile {
        profile_type: t as i32,
        localhost_ref,
    }
}

fn int64(v: Option<i64>) -> Option<Int64Value> {
    v.map(|value| Int64Value { value })
}

impl Writer<'_> {
    /// A field of `spec.securityContext` into the sandbox config.
    #[allow(deprecated)] // the deprecated string is cleared so the two cannot disagree
    pub(super) fn pod_security(
        &self,
        config: &mut PodSandboxConfig,
        f: &Field,
    ) -> Result<(), Refused> {
        let p = f.pointer();
        match f {
            Field::PodRunAsUser => sandbox_sc(config).run_as_user = int64(self.id(&p)?),
            Field::PodRunAsGroup => sandbox_sc(config).run_as_group = int64(self.id(&p)?),
            Field::SupplementalGroups => sandbox_sc(config).supplemental_groups = self.ids(&p)?,
            Field::PodSeccomp => {
                let seccomp = self.seccomp(&p)?;
                let sc = sandbox_sc(config);
                sc.seccomp = Some(seccomp);
                sc.seccomp_profile_path.clear();
            }
            Field::PodAppArmor => sandbox_sc(config).apparmor = self.profile(&p)?,
            Field::PodSeLinux => sandbox_sc(config).selinux_options = self.selinux(&p)?,
            Field::Sysctls => {
                let sysctls = self.sysctls(&p)?;
                config.linux.get_or_insert_with(Default::default).sysctls = sysctls;
            }
            _ => return Err(refused(&p, "not a field of the Pod's securityContext")),
        }
        Ok(())
    }

    /// At CreateContainer, a Pod-level field the container has none of its own of: in
    /// Kubernetes the Pod's then applies to the container, which the CRI carries in the
    /// container's own field (the kubelet copies it there). Writing only the sandbox's would
    /// leave the container without it.
    pub(super) fn inherits(&self, f: &Field) -> Result<(), Refused> {
        let own = match f {
            Field::PodRunAsUser => Field::RunAsUser,
            Field::PodRunAsGroup => Field::RunAsGroup,
            Field::PodSeccomp => Field::Seccomp,
            Field::PodAppArmor => Field::AppArmor,
            Field::PodSeLinux => Field::SeLinux,
            _ => return Ok(()),
        };
        if self.get(&f.pointer()).is_none() || self.get(&own.pointer()).is_some() {
            return Ok(());
        }
        Err(refused(
            &f.pointer(),
            format!(
                "containers[0] has no `{}` of its own, so the Pod's applies to it, which the \
                 CRI carries in the container's field; set it on the container too",
                own.pointer().trim_start_matches("/spec/containers/0/")
            ),
        ))
    }

    /// At CreateContainer, the Pod's supplemental groups go into the container's security
    /// context too: the runtime gives the process the container's (the view shows both).
    pub(super) fn mirror(&self, c: &mut ContainerConfig, f: &Field) -> Result<(), Refused> {
        if *f == Field::SupplementalGroups {
            container_sc(c).supplemental_groups = self.ids(&f.pointer())?;
        }
        Ok(())
    }

    /// A field of `containers[0].securityContext` into the container's.
    #[allow(deprecated)] // the deprecated strings are cleared so the two cannot disagree
    pub(super) fn container_security(
        &self,
        c: &mut ContainerConfig,
        f: &Field,
    ) -> Result<(), Refused> {
        let p = f.pointer();
        match f {
            Field::Privileged => self.privileged(c)?,
            Field::Capabilities => self.capabilities(container_sc(c))?,
            Field::ReadOnlyRootFilesystem => {
                container_sc(c).readonly_rootfs = self.flag(&p)?.unwrap_or(false);
            }
            // Absent is Kubernetes' default: escalation allowed.
            Field::AllowPrivilegeEscalation => {
                container_sc(c).no_new_privs = !self.flag(&p)?.unwrap_or(true);
            }
            Field::RunAsUser => {
                let uid = self.id(&p)?;
                let sc = container_sc(c);
                sc.run_as_user = int64(uid);
                if uid.is_some() {
                    sc.run_as_username.clear();
                }
            }
            Field::RunAsGroup => container_sc(c).run_as_group = int64(self.id(&p)?),
            // Checked against the uid once all is written (`non_root`).
            Field::RunAsNonRoot => {}
            Field::Seccomp => {
                let seccomp = self.seccomp(&p)?;
                let sc = container_sc(c);
                sc.seccomp = Some(seccomp);
                sc.seccomp_profile_path.clear();
            }
            Field::AppArmor => {
                let apparmor = self.profile(&p)?;
                let sc = container_sc(c);
                sc.apparmor = apparmor;
                sc.apparmor_profile.clear();
            }
            Field::SeLinux => container_sc(c).selinux_options = self.selinux(&p)?,
            _ => return Err(refused(&p, "not a field of the container")),
        }
        Ok(())
    }

    /// The view shows `runAsNonRoot` as `runAsUser != 0`, and none without a uid: the CRI
    /// carries only the uid.
    pub(super) fn non_root(&self) -> Result<(), Refused> {
        let p = Field::RunAsNonRoot.pointer();
        let uid = self.id(&Field::RunAsUser.pointer())?;
        let shown = uid.map(|u| u != 0);
        if self.flag(&p)? == shown {
            return Ok(());
        }
        Err(refused(
            &p,
            match (uid, shown) {
                (Some(uid), Some(v)) => format!(
                    "the CRI carries only the uid, and the view shows runAsNonRoot as runAsUser \
                     != 0; with runAsUser {uid}, set runAsNonRoot: {v}"
                ),
                _ => "the request names no uid (the image's user, or a user name), so \
                      runAsNonRoot cannot be carried; set runAsUser too"
                    .to_owned(),
            },
        ))
    }

    /// `privileged`: not where host power with no Pod field forces it (the reasons the view
    /// gave), not off with a Bidirectional mount (Kubernetes allows those only privileged).
    /// Off, the container gets the kubelet's masked `/proc` paths unless it shows
    /// `procMount: Unmasked`, so the view still reads `procMount` as it was.
    fn privileged(&self, c: &mut ContainerConfig) -> Result<(), Refused> {
        let p = Field::Privileged.pointer();
        let on = self.flag(&p)?.unwrap_or(false);
        let annotations = self.before["metadata"]["annotations"].as_object();
        if let Some(r) = annotations.and_then(|a| a.get(PRIVILEGED_REASONS_ANNOTATION)) {
            return Err(refused(
                &p,
                format!(
                    "host power with no Pod field makes the container privileged \
                     ({PRIVILEGED_REASONS_ANNOTATION}: {r})"
                ),
            ));
        }
        let bidirectional = MountPropagation::PropagationBidirectional as i32;
        if let Some(i) = c.mounts.iter().position(|m| m.propagation == bidirectional) {
            if !on {
                return Err(refused(
                    &p,
                    format!(
                        "CRI mount {i} has Bidirectional propagation, which Kubernetes \
                         allows only in a privileged container"
                    ),
                ));
            }
        }
        let unmasked = self.string(PROC_MOUNT)?.as_deref() == Some("Unmasked");
        if on && unmasked {
            return Err(refused(
                PROC_MOUNT,
                "the view shows a privileged container's procMount as Default; set procMount: \
                 Default",
            ));
        }
        let sc = container_sc(c);
        if !on && !unmasked && sc.masked_paths.is_empty() && sc.readonly_paths.is_empty() {
            sc.masked_paths = DEFAULT_MASKED_PATHS.map(String::from).to_vec();
            sc.readonly_paths = DEFAULT_READONLY_PATHS.map(String::from).to_vec();
        }
        sc.privileged = on;
        Ok(())
    }

    /// `add` and `drop` in Kubernetes spelling, as the kubelet sends them (containerd
    /// accepts both); an ambient capability stays while it is still added.
    fn capabilities(&self, sc: &mut LinuxContainerSecurityContext) -> Result<(), Refused> {
        let p = Field::Capabilities.pointer();
        if let Some(Value::Object(m)) = self.get(&p) {
            if let Some(k) = m.keys().find(|k| !matches!(k.as_str(), "add" | "drop")) {
                return Err(refused(&format!("{p}/{k}"), "not a field of capabilities"));
            }
        }
        let names = |list: &str| -> Result<Vec<String>, Refused> {
            let at = format!("{p}/{list}");
            let mut out = Vec::new();
            for c in self.strings(&at)? {
                if !caps::is_well_formed(&caps::to_oci(&c)) {
                    return Err(refused(&at, format!("`{c}` is not a capability name")));
                }
                out.push(caps::to_k8s(&c));
            }
            Ok(out)
        };
        let (add, drop) = (names("add")?, names("drop")?);
        let c = sc.capabilities.get_or_insert_with(Default::default);
        c.add_ambient_capabilities
            .retain(|a| add.contains(&caps::to_k8s(a)));
        c.add_capabilities = add;
        c.drop_capabilities = drop;
        Ok(())
    }

    /// A list of group ids.
    fn ids(&self, p: &str) -> Result<Vec<i64>, Refused> {
        match self.get(p) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_i64().filter(|n| *n >= 0))
                .collect::<Option<_>>()
                .ok_or_else(|| refused(p, "expected a list of non-negative group ids")),
            Some(_) => Err(refused(p, "expected a list of group ids")),
        }
    }

    /// `seccompProfile`: absent is `Unconfined`, which is how the view shows it, so an
    /// explicit `Unconfined` cannot be read back; a Localhost profile is named by its path
    /// on the node, as the kubelet sends it.
    fn seccomp(&self, p: &str) -> Result<SecurityProfile, Refused> {
        let local = format!("{p}/localhostProfile");
        match self.profile(p)? {
            None => Ok(profile(ProfileType::Unconfined, String::new())),
            Some(s) if s.profile_type == ProfileType::Unconfined as i32 => Err(refused(
                p,
                "the view shows an unconfined seccomp profile as none; remove seccompProfile",
            )),
            Some(s) if !s.localhost_ref.is_empty() && !s.localhost_ref.starts_with('/') => {
                Err(refused(
                    &local,
                    "the CRI names a Localhost seccomp profile by its absolute path on the node \
                     (the kubelet sends <root-dir>/seccomp/<localhostProfile>); set that path",
                ))
            }
            Some(s) => Ok(s),
        }
    }

    /// A `{type, localhostProfile}` profile; absent is `None`.
    fn profile(&self, p: &str) -> Result<Option<SecurityProfile>, Refused> {
        let Some(v) = self.get(p) else {
            return Ok(None);
        };
        let m = v
            .as_object()
            .ok_or_else(|| refused(p, "expected {type, localhostProfile}"))?;
        if let Some(k) = m
            .keys()
            .find(|k| !matches!(k.as_str(), "type" | "localhostProfile"))
        {
            return Err(refused(&format!("{p}/{k}"), "not a field of a profile"));
        }
        let (t, local) = (format!("{p}/type"), format!("{p}/localhostProfile"));
        let kind = match self.string(&t)?.as_deref() {
            Some("RuntimeDefault") => ProfileType::RuntimeDefault,
            Some("Unconfined") => ProfileType::Unconfined,
            Some("Localhost") => ProfileType::Localhost,
            _ => {
                return Err(refused(
                    &t,
                    "expected RuntimeDefault, Localhost or Unconfined",
                ));
            }
        };
        match (kind, self.string(&local)?) {
            (ProfileType::Localhost, Some(r)) if !r.is_empty() => Ok(Some(profile(kind, r))),
            (ProfileType::Localhost, _) => Err(refused(&local, "a Localhost profile names one")),
            (_, Some(_)) => Err(refused(&local, "only a Localhost profile names one")),
            (kind, None) => Ok(Some(profile(kind, String::new()))),
        }
    }

    /// `seLinuxOptions`; all four empty is none, as the view shows it.
    fn selinux(&self, p: &str) -> Result<Option<SeLinuxOption>, Refused> {
        let Some(v) = self.get(p) else {
            return Ok(None);
        };
        let m = v
            .as_object()
            .ok_or_else(|| refused(p, "expected {user, role, type, level}"))?;
        if let Some(k) = m
            .keys()
            .find(|k| !matches!(k.as_str(), "user" | "role" | "type" | "level"))
        {
            return Err(refused(
                &format!("{p}/{k}"),
                "not a field of seLinuxOptions",
            ));
        }
        let part =
            |k: &str| Ok::<_, Refused>(self.string(&format!("{p}/{k}"))?.unwrap_or_default());
        let o = SeLinuxOption {
            user: part("user")?,
            role: part("role")?,
            r#type: part("type")?,
            level: part("level")?,
        };
        Ok((o != SeLinuxOption::default()).then_some(o))
    }

    /// `sysctls` as the sandbox's map; a name twice is refused (the map keeps one).
    fn sysctls(&self, p: &str) -> Result<HashMap<String, String>, Refused> {
        let items = match self.get(p) {
            None => return Ok(HashMap::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(refused(p, "expected a list of {name, value}")),
        };
        let mut out = HashMap::new();
        for i in 0..items.len() {
            let at = format!("{p}/{i}");
            let name = self
                .string(&format!("{at}/name"))?
                .filter(|n| !n.is_empty());
            let name =
                name.ok_or_else(|| refused(&format!("{at}/name"), "a sysctl needs a name"))?;
            let value = self.string(&format!("{at}/value"))?.unwrap_or_default();
            if out.insert(name, value).is_some() {
                return Err(refused(&at, "a sysctl named twice"));
            }
        }
        Ok(out)
    }
}
