//! Every field of the OCI runtime spec, and what the gate does with it.
//!
//! The Pod view (pod.rs) only sees the fields it maps, and runc acts on every field it knows,
//! so a field nobody judged would pass the gate unseen. This module is the inventory that
//! closes that gap: each key of each spec object is mapped (policies see it in the Pod view),
//! harmless (listed with the reason), or refused (with the reason). `check` walks a spec along
//! this tree before the Pod view is built and refuses any key it does not know exactly — runc
//! reads JSON with Go's `encoding/json`, which matches keys case-insensitively, so `PROCESS`
//! or a second spelling of a known key would reach runc unseen.
//!
//! Covers runtime-spec v1.0 to v1.3 and main (specs-go/config.go), read as runc 1.1 and later
//! read it. docs/mapping.md "Every OCI spec field" is this tree as a table; a test keeps both
//! the same. Contract: <https://github.com/opencontainers/runtime-spec/blob/main/config.md>.

#[path = "schema_walk.rs"]
mod walk;

pub(crate) use walk::listing;
#[cfg(test)]
pub(crate) use walk::rows;
pub use walk::{check, check_process};

/// What the gate does with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Policies see it: the Pod field it becomes, or how the Pod view judges it.
    Mapped(&'static str),
    /// Passed unjudged, for this reason.
    Harmless(&'static str),
    /// A spec where it is set (not null, empty, `false` or `0`) is refused, for this reason.
    Refused(&'static str),
    /// An object judged member by member.
    Members,
}

/// The JSON shape of one field, as far as the walk needs it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A string, number, boolean, or list of those: nothing below to check.
    Value,
    /// An object with these keys.
    Struct(&'static [Field]),
    /// A list of objects with these keys.
    Array(&'static [Field]),
    /// An object with free-form keys and plain values; a key matching one of the patterns
    /// (`*` is any text) is refused, for the reason beside it.
    Map(&'static [(&'static str, &'static str)]),
    /// An object with free-form keys whose values are objects with these keys.
    MapOf(&'static [Field]),
    /// Not walked: the whole field is refused when set.
    Opaque,
}

/// One key of a spec object.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub key: &'static str,
    pub kind: Kind,
    pub class: Class,
}

const fn f(key: &'static str, kind: Kind, class: Class) -> Field {
    Field { key, kind, class }
}

use Class::{Harmless, Mapped, Members, Refused};
use Kind::{Array, Map, MapOf, Opaque, Struct};
const V: Kind = Kind::Value;

const RLIMITS: Class = Mapped("judged by the Pod view: RLIMIT_RTPRIO and RLIMIT_NICE grant real-time or raised priority without CAP_SYS_NICE");
const HOOK: Class =
    Mapped("judged by the Pod view: a hook not in spec.allowedHooks shows as privileged");
const SECCOMP: Class = Mapped("securityContext.seccompProfile");
const CAPS: Class = Mapped("securityContext.capabilities, privileged");
const MOUNT: Class = Mapped("volumes, volumeMounts, annotation portcullis.dev/unmapped-mounts");
const OWN_CGROUP: Class =
    Harmless("a limit or weight on the container's own cgroup: resource use, not isolation");
/// Annotations runtimes act on beyond the spec: runc's `features` lists the first three as
/// `potentiallyUnsafeConfigAnnotations`; crun lists `run.oci.`.
const ANNOTATIONS_REFUSED: &[(&str, &str)] = &[
    ("bundle", "runc takes it for the bundle directory in the state it gives hooks, so a host hook reads a config.json of the caller's choosing"),
    ("org.criu.config", "runc hands this file to CRIU on checkpoint and restore, and a CRIU configuration can run host scripts as root (action-script)"),
    ("org.systemd.property.*", SYSTEMD),
    ("run.oci.*", CRUN),
];
/// runc's systemd cgroup driver (libcontainer/specconv `initSystemdProps`) turns these
/// annotations into unit properties, set after the ones it derives from `linux.resources`.
const SYSTEMD: &str = "runc (systemd cgroup driver) passes it to systemd as a unit property \
     after its own, so MemoryMax, CPUQuota, DeviceAllow or Delegate here override what \
     policies see";
/// crun (Podman's and CRI-O's default runtime) reads these; see crun(1) "Extensions to OCI".
const CRUN: &str = "crun acts on it beyond the spec: run.oci.seccomp.plugins loads a host \
     library into crun, run.oci.seccomp.receiver hands the seccomp listener to a host socket, \
     run.oci.hooks.stdout makes crun write a host file, run.oci.keep_original_groups keeps the \
     runtime's groups; policies do not judge annotations for that";
const OTHER_OS: &str = "a section for another platform: runc ignores it, but a runtime that reads \
     it takes host paths and devices from it (a hypervisor binary, layer folders, jail \
     settings) and no policy sees it; no Linux container needs it";

/// The runtime-spec root object (config.json; containerd `Container.spec`).
#[rustfmt::skip]
pub static SPEC: &[Field] = &[
    f("ociVersion", V, Harmless("a version label; runc does not act on it")),
    f("process", Struct(PROCESS), Members),
    f("root", Struct(ROOT), Members),
    f("hostname", V, Harmless("the container's own UTS namespace; runc refuses it without one")),
    f("domainname", V, Harmless("the container's own UTS namespace; runc refuses it without one")),
    f("mounts", Array(MOUNTS), Members),
    f("hooks", Struct(HOOKS), Members),
    f("annotations", Map(ANNOTATIONS_REFUSED), Mapped("metadata.annotations; the keys bundle, org.criu.config, org.systemd.property.* and run.oci.* are refused")),
    f("linux", Struct(LINUX), Members),
    f("solaris", Opaque, Refused(OTHER_OS)),
    f("windows", Opaque, Refused(OTHER_OS)),
    f("vm", Opaque, Refused(OTHER_OS)),
    f("zos", Opaque, Refused(OTHER_OS)),
    f("freebsd", Opaque, Refused(OTHER_OS)),
];

/// The runtime-spec Process object; also the whole of a containerd `Tasks/Exec` process.
#[rustfmt::skip]
pub static PROCESS: &[Field] = &[
    f("terminal", V, Mapped("containers[0].tty")),
    f("consoleSize", Struct(BOX), Members),
    f("user", Struct(USER), Members),
    f("args", V, Mapped("containers[0].command")),
    f("commandLine", V, Refused("Windows only: a Windows runtime runs it instead of `args`, which is what policies see")),
    f("env", V, Mapped("containers[0].env")),
    f("cwd", V, Mapped("containers[0].workingDir")),
    f("capabilities", Struct(CAPABILITIES), Members),
    f("rlimits", Array(RLIMIT), RLIMITS),
    f("noNewPrivileges", V, Mapped("securityContext.allowPrivilegeEscalation")),
    f("apparmorProfile", V, Mapped("securityContext.appArmorProfile")),
    f("oomScoreAdj", V, Mapped("judged by the Pod view: a negative value makes the host's OOM killer take other processes first")),
    f("scheduler", Opaque, Refused("runc sets the policy with its own privileges: SCHED_FIFO, SCHED_RR or SCHED_DEADLINE lets the container starve host tasks without CAP_SYS_NICE, and no Pod field shows it")),
    f("selinuxLabel", V, Mapped("securityContext.seLinuxOptions")),
    f("ioPriority", Opaque, Refused("runc sets it with its own privileges: IOPRIO_CLASS_RT (CAP_SYS_ADMIN otherwise) starves the host's disk I/O, and no Pod field shows it")),
    f("execCPUAffinity", Struct(CPU_AFFINITY), Members),
];

#[rustfmt::skip]
static BOX: &[Field] = &[
    f("height", V, Harmless("terminal size")),
    f("width", V, Harmless("terminal size")),
];

#[rustfmt::skip]
static USER: &[Field] = &[
    f("uid", V, Mapped("securityContext.runAsUser, runAsNonRoot")),
    f("gid", V, Mapped("securityContext.runAsGroup")),
    f("umask", V, Harmless("default mode of the files the container creates")),
    f("additionalGids", V, Mapped("spec.securityContext.supplementalGroups")),
    f("username", V, Refused("Windows only: a Windows runtime runs as this user, while policies see `uid`")),
];

#[rustfmt::skip]
static CAPABILITIES: &[Field] = &[
    f("bounding", V, CAPS),
    f("effective", V, CAPS),
    f("inheritable", V, CAPS),
    f("permitted", V, CAPS),
    f("ambient", V, CAPS),
];

#[rustfmt::skip]
static RLIMIT: &[Field] = &[f("type", V, RLIMITS), f("hard", V, RLIMITS), f("soft", V, RLIMITS)];

#[rustfmt::skip]
static CPU_AFFINITY: &[Field] = &[
    f("initial", V, Harmless("CPU affinity of an exec'd process, inside the container's cpuset")),
    f("final", V, Harmless("CPU affinity of an exec'd process, inside the container's cpuset")),
];

#[rustfmt::skip]
static ROOT: &[Field] = &[
    f("path", V, Mapped("judged by the Pod view: a root outside the bundle or snapshot is a host directory")),
    f("readonly", V, Mapped("securityContext.readOnlyRootFilesystem")),
];

#[rustfmt::skip]
static MOUNTS: &[Field] = &[
    f("destination", V, MOUNT),
    f("type", V, MOUNT),
    f("source", V, MOUNT),
    f("options", V, MOUNT),
    f("uidMappings", Array(ID_MAPPING), Refused(ID_MAPPED_MOUNT)),
    f("gidMappings", Array(ID_MAPPING), Refused(ID_MAPPED_MOUNT)),
];

const ID_MAPPED_MOUNT: &str = "an id-mapped mount changes who owns the host files under it \
     (host root's files can become the container user's), and no Pod field shows it";

#[rustfmt::skip]
static HOOKS: &[Field] = &[
    f("prestart", Array(HOOK_ENTRY), HOOK),
    f("createRuntime", Array(HOOK_ENTRY), HOOK),
    f("createContainer", Array(HOOK_ENTRY), HOOK),
    f("startContainer", Array(HOOK_ENTRY), HOOK),
    f("poststart", Array(HOOK_ENTRY), HOOK),
    f("poststop", Array(HOOK_ENTRY), HOOK),
];

#[rustfmt::skip]
static HOOK_ENTRY: &[Field] = &[
    f("path", V, HOOK),
    f("args", V, HOOK),
    f("env", V, HOOK),
    f("timeout", V, HOOK),
];

#[rustfmt::skip]
static LINUX: &[Field] = &[
    f("uidMappings", Array(ID_MAPPING), USERS),
    f("gidMappings", Array(ID_MAPPING), USERS),
    f("sysctl", Map(&[]), Mapped("spec.securityContext.sysctls")),
    f("resources", Struct(RESOURCES), Members),
    f("cgroupsPath", V, Mapped("annotation portcullis.dev/cgroups-path; an existing cgroup (a host one) is refused by the proxy and the runc wrapper")),
    f("namespaces", Array(NAMESPACE), Members),
    f("devices", Array(DEVICE), DEVICES),
    f("netDevices", Opaque, Refused("moves a host network interface into the container: the host loses it and the container reaches the host's network directly; no Pod field shows it")),
    f("seccomp", Struct(SECCOMP_FIELDS), Members),
    f("rootfsPropagation", V, Mapped("judged by the Pod view: shared propagation lets the container's mounts reach the host")),
    f("maskedPaths", V, Mapped("securityContext.procMount, privileged")),
    f("readonlyPaths", V, Mapped("securityContext.procMount, privileged")),
    f("mountLabel", V, Mapped("privileged unless of type container_file_t (judged by the Pod view)")),
    f("intelRdt", Struct(INTEL_RDT), Members),
    f("memoryPolicy", Struct(MEMORY_POLICY), Members),
    f("personality", Struct(PERSONALITY), Members),
    f("timeOffsets", MapOf(TIME_OFFSET), TIME_NS),
];

const USERS: Class = Mapped("hostUsers (judged by the Pod view)");

#[rustfmt::skip]
static ID_MAPPING: &[Field] = &[
    f("containerID", V, USERS),
    f("hostID", V, USERS),
    f("size", V, USERS),
];

#[rustfmt::skip]
static NAMESPACE: &[Field] = &[
    f("type", V, Mapped("hostNetwork, hostPID, hostIPC, hostUsers")),
    f("path", V, Mapped("annotation portcullis.dev/namespace-path.<type> (judged by the Pod view)")),
];

const DEVICES: Class = Mapped(
    "annotation portcullis.dev/devices, securityContext.privileged (judged by the Pod view)",
);

#[rustfmt::skip]
static DEVICE: &[Field] = &[
    f("path", V, DEVICES),
    f("type", V, DEVICES),
    f("major", V, DEVICES),
    f("minor", V, DEVICES),
    f("fileMode", V, DEVICES),
    f("uid", V, DEVICES),
    f("gid", V, DEVICES),
];

#[rustfmt::skip]
static RESOURCES: &[Field] = &[
    f("devices", Array(DEVICE_CGROUP), Mapped("securityContext.privileged (device cgroup)")),
    f("memory", Struct(MEMORY), Members),
    f("cpu", Struct(CPU), Members),
    f("pids", Struct(PIDS), Members),
    f("blockIO", Struct(BLOCK_IO), Members),
    f("hugepageLimits", Array(HUGEPAGE), Mapped("resources.limits.hugepages-<size>")),
    f("network", Struct(NETWORK), Members),
    f("rdma", MapOf(RDMA), OWN_CGROUP),
    // runc writes these files last, so a key here beats the limit policies saw. kubelet
    // writes only memory.min, memory.high and memory.swap.max here, which nothing shows.
    f("unified", Map(&[("memory.max", OVERRIDE), ("cpu.max", OVERRIDE), ("hugetlb.*", OVERRIDE), ("cgroup.*", CGROUP_CORE)]),
      Harmless("cgroup v2 files of the container's own cgroup; the keys memory.max, cpu.max, hugetlb.* and cgroup.* are refused")),
];

const OVERRIDE: &str =
    "runc writes it after the limits policies see (resources.limits), so it would override them";
const CGROUP_CORE: &str = "a core file of the container's cgroup: cgroup.procs moves any host \
     process into it, cgroup.subtree_control and cgroup.type reshape it";

#[rustfmt::skip]
static DEVICE_CGROUP: &[Field] = &[
    f("allow", V, Mapped("securityContext.privileged (device cgroup)")),
    f("type", V, Mapped("securityContext.privileged (device cgroup)")),
    f("major", V, Mapped("securityContext.privileged (device cgroup)")),
    f("minor", V, Mapped("securityContext.privileged (device cgroup)")),
    f("access", V, Mapped("securityContext.privileged (device cgroup)")),
];

#[rustfmt::skip]
static MEMORY: &[Field] = &[
    f("limit", V, Mapped("resources.limits.memory")),
    f("reservation", V, OWN_CGROUP),
    f("swap", V, OWN_CGROUP),
    f("kernel", V, OWN_CGROUP),
    f("kernelTCP", V, OWN_CGROUP),
    f("swappiness", V, OWN_CGROUP),
    f("disableOOMKiller", V, OWN_CGROUP),
    f("useHierarchy", V, OWN_CGROUP),
    f("checkBeforeUpdate", V, Harmless("only changes how runc updates a running container")),
];

#[rustfmt::skip]
static CPU: &[Field] = &[
    f("shares", V, OWN_CGROUP),
    f("quota", V, Mapped("resources.limits.cpu")),
    f("burst", V, OWN_CGROUP),
    f("period", V, Mapped("resources.limits.cpu")),
    f("realtimeRuntime", V, Harmless("a real-time budget of the container's own cgroup; real-time scheduling itself needs CAP_SYS_NICE (capabilities), RLIMIT_RTPRIO (rlimits) or process.scheduler (refused)")),
    f("realtimePeriod", V, Harmless("a real-time budget of the container's own cgroup (see realtimeRuntime)")),
    f("cpus", V, OWN_CGROUP),
    f("mems", V, OWN_CGROUP),
    f("idle", V, OWN_CGROUP),
];

#[rustfmt::skip]
static PIDS: &[Field] = &[f("limit", V, OWN_CGROUP)];

#[rustfmt::skip]
static BLOCK_IO: &[Field] = &[
    f("weight", V, OWN_CGROUP),
    f("leafWeight", V, OWN_CGROUP),
    f("weightDevice", Array(WEIGHT_DEVICE), OWN_CGROUP),
    f("throttleReadBpsDevice", Array(THROTTLE_DEVICE), OWN_CGROUP),
    f("throttleWriteBpsDevice", Array(THROTTLE_DEVICE), OWN_CGROUP),
    f("throttleReadIOPSDevice", Array(THROTTLE_DEVICE), OWN_CGROUP),
    f("throttleWriteIOPSDevice", Array(THROTTLE_DEVICE), OWN_CGROUP),
];

#[rustfmt::skip]
static WEIGHT_DEVICE: &[Field] = &[
    f("major", V, OWN_CGROUP),
    f("minor", V, OWN_CGROUP),
    f("weight", V, OWN_CGROUP),
    f("leafWeight", V, OWN_CGROUP),
];

#[rustfmt::skip]
static THROTTLE_DEVICE: &[Field] = &[
    f("major", V, OWN_CGROUP),
    f("minor", V, OWN_CGROUP),
    f("rate", V, OWN_CGROUP),
];

#[rustfmt::skip]
static HUGEPAGE: &[Field] = &[
    f("pageSize", V, Mapped("resources.limits.hugepages-<size>")),
    f("limit", V, Mapped("resources.limits.hugepages-<size>")),
];

#[rustfmt::skip]
static NETWORK: &[Field] = &[
    f("classID", V, Refused("tags the container's packets with a net_cls class id, which host tc and iptables (`-m cgroup`) rules may trust; no Pod field shows it")),
    f("priorities", Array(INTERFACE_PRIORITY), OWN_CGROUP),
];

#[rustfmt::skip]
static INTERFACE_PRIORITY: &[Field] = &[f("name", V, OWN_CGROUP), f("priority", V, OWN_CGROUP)];

#[rustfmt::skip]
static RDMA: &[Field] = &[
    f("hcaHandles", V, OWN_CGROUP),
    f("hcaObjects", V, OWN_CGROUP),
];

#[rustfmt::skip]
static SECCOMP_FIELDS: &[Field] = &[
    f("defaultAction", V, SECCOMP),
    f("defaultErrnoRet", V, SECCOMP),
    f("architectures", V, SECCOMP),
    f("flags", V, SECCOMP),
    f("listenerPath", V, Refused("runc hands the container's seccomp notify descriptor to whatever listens on this host socket; that agent then answers the container's system calls, possibly performing them with host privileges, and no Pod field shows it")),
    f("listenerMetadata", V, Harmless("read only by the listener, which is refused")),
    f("syscalls", Array(SYSCALL), SECCOMP),
];

#[rustfmt::skip]
static SYSCALL: &[Field] = &[
    f("names", V, SECCOMP),
    f("action", V, SECCOMP),
    f("errnoRet", V, SECCOMP),
    f("args", Array(SYSCALL_ARG), SECCOMP),
];

#[rustfmt::skip]
static SYSCALL_ARG: &[Field] = &[
    f("index", V, SECCOMP),
    f("value", V, SECCOMP),
    f("valueTwo", V, SECCOMP),
    f("op", V, SECCOMP),
];

const RDT: Class =
    Harmless("cache and memory-bandwidth allocation (resctrl): a resource share, like cpu shares");

#[rustfmt::skip]
static INTEL_RDT: &[Field] = &[
    f("closID", V, RDT),
    f("schemata", V, RDT),
    f("l3CacheSchema", V, RDT),
    f("memBwSchema", V, RDT),
    f("enableMonitoring", V, RDT),
    // v1.1 and v1.2 spelled monitoring as two switches; runc 1.1 reads them.
    f("enableCMT", V, RDT),
    f("enableMBM", V, RDT),
];

const NUMA: Class =
    Harmless("NUMA placement of the container's memory, inside its cpuset's memory nodes");

#[rustfmt::skip]
static MEMORY_POLICY: &[Field] = &[f("mode", V, NUMA), f("nodes", V, NUMA), f("flags", V, NUMA)];

const PERSONA: Class = Harmless(
    "execution domain of the container's own processes (32-bit uname); runc accepts only LINUX and LINUX32",
);

#[rustfmt::skip]
static PERSONALITY: &[Field] = &[f("domain", V, PERSONA), f("flags", V, PERSONA)];

const TIME_NS: Class =
    Harmless("clock offsets of the container's own time namespace; runc refuses them without one");

#[rustfmt::skip]
static TIME_OFFSET: &[Field] = &[f("secs", V, TIME_NS), f("nanosecs", V, TIME_NS)];

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
