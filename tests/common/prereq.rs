//! What the real-component tests need on the machine, in one table: each prerequisite's
//! name, how to tell it is there, and what provides it. A test binary names what it needs
//! (`PREREQUISITES` at its root, for the harness in `common`); a missing one is a failure,
//! reported as one line naming everything missing and the script that installs it.
//!
//! Standalone (std only, no `super::`): `tests/gojson.rs` includes it without `common`.

use std::path::Path;
use std::process::Command;

/// Where Debian's `golang-*-dev` packages put their sources (a GOPATH).
pub const GOPATH: &str = "/usr/share/gocode";

/// Where Debian's `containernetworking-plugins` puts the CNI plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// The venv `scripts/setup.sh` makes with grpcio >= 1.57 from PyPI (tests/clients/python.rs).
const CLIENTS_VENV_PYTHON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/target/clients-venv/bin/python"
);

struct Prerequisite {
    name: &'static str,
    /// What provides it, shown after the name: `package docker.io`.
    provided_by: &'static str,
    present: fn() -> bool,
}

/// Every prerequisite a test binary may name. Packages are those `scripts/setup.sh`
/// installs (Debian names).
const TABLE: &[Prerequisite] = &[
    Prerequisite {
        name: "root",
        provided_by: "the real-component tests start containerd",
        present: is_root,
    },
    Prerequisite {
        name: "containerd",
        provided_by: "package containerd",
        present: || on_path("containerd"),
    },
    Prerequisite {
        name: "ctr",
        provided_by: "package containerd",
        present: || on_path("ctr"),
    },
    Prerequisite {
        name: "runc",
        provided_by: "package runc",
        present: || on_path("runc"),
    },
    Prerequisite {
        name: "dockerd",
        provided_by: "package docker.io",
        present: || on_path("dockerd"),
    },
    Prerequisite {
        name: "docker",
        provided_by: "package docker.io",
        present: || on_path("docker"),
    },
    Prerequisite {
        name: "podman",
        provided_by: "package podman",
        present: || on_path("podman"),
    },
    // The local test image (scripts/busybox-image.sh) and the bypass corpus's host
    // directories copy this binary into containers: it must not need a loader.
    Prerequisite {
        name: "busybox",
        provided_by: "a static busybox, package busybox-static",
        present: static_busybox,
    },
    // containerd's CRI plugin runs pods' networks with these (tests/common/cri.rs): the
    // bridge and its host-local IPAM from the test's conflist, loopback for every pod's `lo`.
    Prerequisite {
        name: "cni",
        provided_by: "package containernetworking-plugins",
        present: || {
            ["bridge", "host-local", "loopback"]
                .iter()
                .all(|p| is_executable(&Path::new(CNI_BIN_DIR).join(p)))
        },
    },
    // `ip link del`: the CRI harness removes the bridge its pods' network made.
    Prerequisite {
        name: "ip",
        provided_by: "package iproute2",
        present: || on_path("ip"),
    },
    Prerequisite {
        name: "openssl",
        provided_by: "package openssl",
        present: || on_path("openssl"),
    },
    // tests/common/registry.rs: a private registry (distribution 2.8) that must run here,
    // and skopeo, which pushes the local test image to it.
    Prerequisite {
        name: "docker-registry",
        provided_by: "package docker-registry",
        present: || succeeds("docker-registry", &["--version"]),
    },
    Prerequisite {
        name: "skopeo",
        provided_by: "package skopeo",
        present: || succeeds("skopeo", &["--version"]),
    },
    Prerequisite {
        name: "go",
        provided_by: "package golang-go",
        present: || succeeds("go", &["version"]),
    },
    Prerequisite {
        name: "grpc-go",
        provided_by: "package golang-google-grpc-dev",
        present: || go_source("google.golang.org/grpc"),
    },
    Prerequisite {
        name: "protobuf-go",
        provided_by: "package golang-google-protobuf-dev",
        present: || go_source("google.golang.org/protobuf/encoding/protowire"),
    },
    Prerequisite {
        name: "runtime-spec-go",
        provided_by: "package golang-github-opencontainers-specs-dev",
        present: || go_source("github.com/opencontainers/runtime-spec/specs-go"),
    },
    Prerequisite {
        name: "python3-grpcio",
        provided_by: "Debian's /usr/bin/python3 with grpc, package python3-grpcio",
        present: || succeeds("/usr/bin/python3", &["-c", "import grpc"]),
    },
    Prerequisite {
        name: "python3-bcrypt",
        provided_by: "python3 whose crypt module makes bcrypt hashes (glibc; Debian's python3)",
        present: || {
            succeeds(
                "python3",
                &[
                    "-W",
                    "ignore",
                    "-c",
                    "import crypt; assert crypt.crypt('x', crypt.mksalt(crypt.METHOD_BLOWFISH)).startswith('$2')",
                ],
            )
        },
    },
    Prerequisite {
        name: "grpcio-venv",
        provided_by: "grpcio >= 1.57 from PyPI in target/clients-venv",
        present: || succeeds(CLIENTS_VENV_PYTHON, &["-c", "import grpc"]),
    },
];

/// Panics with one line if any of `names` is missing:
/// `prerequisite missing: dockerd (package docker.io) — run scripts/setup.sh as root`.
#[track_caller]
pub fn prerequisites(names: &[&str]) {
    if let Some(line) = missing(names) {
        panic!("{line}");
    }
}

/// The one line saying what of `names` is missing and what to run, or `None`.
pub fn missing(names: &[&str]) -> Option<String> {
    let mut absent = Vec::new();
    for name in names {
        let p = TABLE
            .iter()
            .find(|p| p.name == *name)
            .unwrap_or_else(|| panic!("tests/common/prereq.rs has no prerequisite {name:?}"));
        if !(p.present)() {
            absent.push(p);
        }
    }
    if absent.is_empty() {
        return None;
    }
    let list: Vec<String> = absent
        .iter()
        .map(|p| format!("{} ({})", p.name, p.provided_by))
        .collect();
    // scripts/test.sh runs scripts/setup.sh first, so it is the one answer for root.
    let script = if absent.iter().any(|p| p.name == "root") {
        "scripts/test.sh"
    } else {
        "scripts/setup.sh"
    };
    let s = if absent.len() == 1 { "" } else { "s" };
    Some(format!(
        "prerequisite{s} missing: {} — run {script} as root",
        list.join(", ")
    ))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn on_path(tool: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(tool)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn go_source(dir: &str) -> bool {
    Path::new(GOPATH).join("src").join(dir).is_dir()
}

/// `busybox` on PATH, an ELF without a program interpreter (statically linked).
fn static_busybox() -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    let Some(busybox) = std::env::split_paths(&path)
        .map(|dir| dir.join("busybox"))
        .find(|p| is_executable(p))
    else {
        return false;
    };
    std::fs::read(busybox).is_ok_and(|elf| elf_is_static(&elf))
}

/// A 64-bit little-endian ELF with no `PT_INTERP` program header.
fn elf_is_static(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    // ELF magic, ELFCLASS64, ELFDATA2LSB.
    if !elf.starts_with(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..phnum).all(|i| u32_at(phoff + i * phentsize).is_some_and(|t| t != PT_INTERP))
}
