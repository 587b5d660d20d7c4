//! The Debian package end to end: `scripts/package.sh --profile dev` builds it from the test
//! build's binary, its contents are checked (`dpkg-deb -c`, `-I`, the binary's sections),
//! then it is installed on this machine with `dpkg -i`, checked as installed (version, units
//! through `systemd-analyze verify`, man page, config loads, nothing enabled) and purged.
//!
//! It changes the machine, so it refuses to start when a `portcullis` package or any of the
//! directories a purge deletes already exist (they would not be ours to remove), and a guard
//! purges the package if an assertion fails midway.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// What the package's postrm deletes on purge.
const PURGED_DIRS: &[&str] = &[
    "/etc/portcullis",
    "/var/log/portcullis",
    "/var/lib/portcullis",
];
const UNITS: &[&str] = &[
    "/usr/lib/systemd/system/portcullis-proxy.service",
    "/usr/lib/systemd/system/portcullis-serve.service",
];

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e} (scripts/setup.sh installs it)"))
}

/// stdout of a command that must succeed.
#[track_caller]
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", "portcullis"])
        .stdout
        .starts_with(b"install ok installed")
}

/// Purges the package when dropped, so a failed assertion leaves the machine as it was.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let out = run("dpkg", &["--purge", "portcullis"]);
        if !out.status.success() {
            eprintln!(
                "dpkg --purge portcullis: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Builds the package into `out`: the path of the one .deb.
fn build(out: &Path) -> PathBuf {
    let stdout = ok(
        &format!("{ROOT}/scripts/package.sh"),
        &["--profile", "dev", "--out", out.to_str().unwrap()],
    );
    let debs: Vec<&str> = stdout.lines().filter(|l| l.ends_with(".deb")).collect();
    assert_eq!(debs.len(), 1, "one .deb printed: {stdout}");
    PathBuf::from(debs[0])
}

fn check_contents(deb: &Path, dir: &Path) {
    let deb = deb.to_str().unwrap();
    let files = ok("dpkg-deb", &["-c", deb]);
    let paths: Vec<&str> = files
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in [
        "./usr/bin/portcullis",
        "./etc/portcullis/config.yaml",
        "./usr/share/man/man1/portcullis.1.gz",
        "./usr/share/man/man1/portcullis-proxy.1.gz",
        "./usr/share/man/man1/portcullis-serve.1.gz",
        "./usr/share/bash-completion/completions/portcullis",
        "./usr/share/zsh/vendor-completions/_portcullis",
        "./usr/share/fish/vendor_completions.d/portcullis.fish",
        "./usr/share/doc/portcullis/README.md",
        "./usr/share/doc/portcullis/copyright",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(UNITS.iter().map(|u| format!(".{u}")))
    {
        assert!(
            paths.contains(&&want[..]),
            "{want} not in the package:\n{files}"
        );
    }
    // The dev package has no debug files at all (the release one splits them into a .ddeb).
    assert!(
        !paths.iter().any(|p| p.contains("/usr/lib/debug/")),
        "{files}"
    );
    let info = ok("dpkg-deb", &["-I", deb]);
    for want in ["Package: portcullis", "Section: admin", "Depends: libc6"] {
        assert!(
            info.contains(want),
            "{want} not in the control file:\n{info}"
        );
    }
    let control = dir.join("control");
    ok("dpkg-deb", &["-e", deb, control.to_str().unwrap()]);
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/portcullis/config.yaml");
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("daemon-reload"), "{postinst}");
    // Enabling is checked on the installed machine (no .wants link); starting, here.
    assert!(
        !postinst.contains("deb-systemd-invoke start"),
        "the postinst must not start a unit:\n{postinst}"
    );
    // Neither the debug info nor the symbol table: the package's binary is stripped.
    let tree = dir.join("tree");
    ok("dpkg-deb", &["-x", deb, tree.to_str().unwrap()]);
    let sections = ok(
        "readelf",
        &[
            "-S",
            "--wide",
            tree.join("usr/bin/portcullis").to_str().unwrap(),
        ],
    );
    for unwanted in [".debug_info", ".symtab"] {
        assert!(
            !sections.contains(unwanted),
            "the packaged binary is not stripped: it has {unwanted}"
        );
    }
}

fn check_installed() {
    let version = ok("/usr/bin/portcullis", &["--version"]);
    assert_eq!(
        version.trim(),
        format!("portcullis {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(Path::new("/etc/portcullis/policies").is_dir());
    // The units as installed, with /usr/bin/portcullis and the man pages now in place
    // (portcullis-serve's Documentation= names one).
    let mut verify = vec!["verify"];
    verify.extend(UNITS);
    let out = run("systemd-analyze", &verify);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let man = ok("man", &["-w", "portcullis"]);
    assert_eq!(man.trim(), "/usr/share/man/man1/portcullis.1.gz");
    // The conffile loads as a config (--print-k8s-config loads it, then prints and exits).
    ok(
        "/usr/bin/portcullis",
        &[
            "serve",
            "--config",
            "/etc/portcullis/config.yaml",
            "--print-k8s-config",
            "https://portcullis.example:8443",
        ],
    );
    // Installed, not enabled: the proxy needs `portcullis install proxy` first.
    for unit in ["portcullis-proxy.service", "portcullis-serve.service"] {
        let wants = format!("/etc/systemd/system/multi-user.target.wants/{unit}");
        assert!(!Path::new(&wants).exists(), "{wants}: enabled on install");
    }
}

fn check_purged() {
    let listed = run("dpkg", &["-L", "portcullis"]);
    assert!(
        !listed.status.success() || listed.stdout.is_empty(),
        "dpkg -L still lists files: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    for path in PURGED_DIRS
        .iter()
        .chain(UNITS)
        .chain(&["/usr/bin/portcullis"])
    {
        assert!(!Path::new(path).exists(), "{path} left after the purge");
    }
}

#[test]
fn the_package_installs_verifies_and_purges() {
    let uid = ok("id", &["-u"]);
    assert_eq!(uid.trim(), "0", "dpkg -i needs root");
    assert!(
        !installed(),
        "a portcullis package is already installed on this machine: this test would purge it"
    );
    for dir in PURGED_DIRS {
        assert!(
            !Path::new(dir).exists(),
            "{dir} exists: the test's purge would delete it; move it away to run this test"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build(&tmp.path().join("out"));
    check_contents(&deb, tmp.path());

    let guard = Installed;
    ok("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(installed());
    check_installed();

    ok("dpkg", &["--purge", "portcullis"]);
    std::mem::forget(guard);
    check_purged();
}
