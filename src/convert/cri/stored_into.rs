//! The mirror of `stored.rs` into k8s-cri's types, field for field (the deprecated
//! profile fields too: the conversion reads them when the profile message is absent).

#![allow(deprecated)]

use k8s_cri::v1 as api;

use super::*;

fn all<T, U: From<T>>(items: Vec<T>) -> Vec<U> {
    items.into_iter().map(U::from).collect()
}

fn some<T, U: From<T>>(item: Option<T>) -> Option<U> {
    item.map(U::from)
}

impl From<ContainerConfig> for api::ContainerConfig {
    fn from(c: ContainerConfig) -> Self {
        Self {
            metadata: c.metadata.map(|m| api::ContainerMetadata {
                name: m.name,
                attempt: m.attempt,
            }),
            image: some(c.image),
            command: c.command,
            args: c.args,
            working_dir: c.working_dir,
            envs: all(c.envs),
            mounts: all(c.mounts),
            devices: all(c.devices),
            labels: c.labels,
            annotations: c.annotations,
            log_path: c.log_path,
            stdin: c.stdin,
            stdin_once: c.stdin_once,
            tty: c.tty,
            linux: c.linux.map(|l| api::LinuxContainerConfig {
                resources: some(l.resources),
                security_context: some(l.security_context),
            }),
            // Refused by `Empty` when it holds anything.
            windows: None,
            cdi_devices: c
                .cdi_devices
                .into_iter()
                .map(|d| api::CdiDevice { name: d.name })
                .collect(),
        }
    }
}

impl From<ImageSpec> for api::ImageSpec {
    fn from(i: ImageSpec) -> Self {
        Self {
            image: i.image,
            annotations: i.annotations,
            user_specified_image: i.user_specified_image,
            runtime_handler: i.runtime_handler,
        }
    }
}

impl From<KeyValue> for api::KeyValue {
    fn from(k: KeyValue) -> Self {
        Self {
            key: k.key,
            value: k.value,
        }
    }
}

impl From<Mount> for api::Mount {
    fn from(m: Mount) -> Self {
        Self {
            container_path: m.container_path,
            host_path: m.host_path,
            readonly: m.readonly,
            selinux_relabel: m.selinux_relabel,
            propagation: m.propagation,
            uid_mappings: all(m.uid_mappings),
            gid_mappings: all(m.gid_mappings),
            recursive_read_only: m.recursive_read_only,
            image: some(m.image),
        }
    }
}

impl From<IdMapping> for api::IdMapping {
    fn from(m: IdMapping) -> Self {
        Self {
            host_id: m.host_id,
            container_id: m.container_id,
            length: m.length,
        }
    }
}

impl From<Device> for api::Device {
    fn from(d: Device) -> Self {
        Self {
            container_path: d.container_path,
            host_path: d.host_path,
            permissions: d.permissions,
        }
    }
}

impl From<Resources> for api::LinuxContainerResources {
    fn from(r: Resources) -> Self {
        Self {
            cpu_period: r.cpu_period,
            cpu_quota: r.cpu_quota,
            cpu_shares: r.cpu_shares,
            memory_limit_in_bytes: r.memory_limit_in_bytes,
            oom_score_adj: r.oom_score_adj,
            cpuset_cpus: r.cpuset_cpus,
            cpuset_mems: r.cpuset_mems,
            hugepage_limits: r
                .hugepage_limits
                .into_iter()
                .map(|h| api::HugepageLimit {
                    page_size: h.page_size,
                    limit: h.limit,
                })
                .collect(),
            unified: r.unified,
            memory_swap_limit_in_bytes: r.memory_swap_limit_in_bytes,
        }
    }
}

impl From<ContainerSecurity> for api::LinuxContainerSecurityContext {
    fn from(s: ContainerSecurity) -> Self {
        Self {
            capabilities: s.capabilities.map(|c| api::Capability {
                add_capabilities: c.add_capabilities,
                drop_capabilities: c.drop_capabilities,
                add_ambient_capabilities: c.add_ambient_capabilities,
            }),
            privileged: s.privileged,
            namespace_options: some(s.namespace_options),
            selinux_options: some(s.selinux_options),
            run_as_user: some(s.run_as_user),
            run_as_group: some(s.run_as_group),
            run_as_username: s.run_as_username,
            readonly_rootfs: s.readonly_rootfs,
            supplemental_groups: s.supplemental_groups,
            supplemental_groups_policy: s.supplemental_groups_policy,
            no_new_privs: s.no_new_privs,
            masked_paths: s.masked_paths,
            readonly_paths: s.readonly_paths,
            seccomp: some(s.seccomp),
            apparmor: some(s.apparmor),
            apparmor_profile: s.apparmor_profile,
            seccomp_profile_path: s.seccomp_profile_path,
        }
    }
}

impl From<NamespaceOption> for api::NamespaceOption {
    fn from(n: NamespaceOption) -> Self {
        Self {
            network: n.network,
            pid: n.pid,
            ipc: n.ipc,
            target_id: n.target_id,
            userns_options: n.userns_options.map(|u| api::UserNamespace {
                mode: u.mode,
                uids: all(u.uids),
                gids: all(u.gids),
            }),
        }
    }
}

impl From<SeLinuxOption> for api::SeLinuxOption {
    fn from(o: SeLinuxOption) -> Self {
        Self {
            user: o.user,
            role: o.role,
            r#type: o.kind,
            level: o.level,
        }
    }
}

impl From<Int64Value> for api::Int64Value {
    fn from(v: Int64Value) -> Self {
        Self { value: v.value }
    }
}

impl From<SecurityProfile> for api::SecurityProfile {
    fn from(p: SecurityProfile) -> Self {
        Self {
            profile_type: p.profile_type,
            localhost_ref: p.localhost_ref,
        }
    }
}

impl From<PodSandboxConfig> for api::PodSandboxConfig {
    fn from(c: PodSandboxConfig) -> Self {
        Self {
            metadata: c.metadata.map(|m| api::PodSandboxMetadata {
                name: m.name,
                uid: m.uid,
                namespace: m.namespace,
                attempt: m.attempt,
            }),
            hostname: c.hostname,
            log_directory: c.log_directory,
            dns_config: c.dns_config.map(|d| api::DnsConfig {
                servers: d.servers,
                searches: d.searches,
                options: d.options,
            }),
            port_mappings: c
                .port_mappings
                .into_iter()
                .map(|p| api::PortMapping {
                    protocol: p.protocol,
                    container_port: p.container_port,
                    host_port: p.host_port,
                    host_ip: p.host_ip,
                })
                .collect(),
            labels: c.labels,
            annotations: c.annotations,
            linux: c.linux.map(|l| api::LinuxPodSandboxConfig {
                cgroup_parent: l.cgroup_parent,
                security_context: some(l.security_context),
                sysctls: l.sysctls,
                overhead: some(l.overhead),
                resources: some(l.resources),
            }),
            windows: None,
        }
    }
}

impl From<SandboxSecurity> for api::LinuxSandboxSecurityContext {
    fn from(s: SandboxSecurity) -> Self {
        Self {
            namespace_options: some(s.namespace_options),
            selinux_options: some(s.selinux_options),
            run_as_user: some(s.run_as_user),
            run_as_group: some(s.run_as_group),
            readonly_rootfs: s.readonly_rootfs,
            supplemental_groups: s.supplemental_groups,
            supplemental_groups_policy: s.supplemental_groups_policy,
            privileged: s.privileged,
            seccomp: some(s.seccomp),
            apparmor: some(s.apparmor),
            seccomp_profile_path: s.seccomp_profile_path,
        }
    }
}
