//! `install image-verifier` beside `install proxy`: both edit containerd's config.toml, so
//! each keeps the other's keys, and uninstall undoes them in the reverse order (or says
//! which to undo first); a config it cannot edit safely is refused with nothing written;
//! a second install under the same root waits for the first.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{assert_same_tree, both, host, install_proxy, portcullis, run_ok, text, tree, BIN};

const STANZA: &str = "[plugins.\"io.containerd.image-verifier.v1.bindir\"]\n  bin_dir = \"/opt/verifiers\"\n  max_verifiers = 10\n  per_verifier_timeout = \"10s\"\n";

/// `portcullis install image-verifier` under `root`, this build as the binary.
fn verifier_args(root: &str) -> Vec<&str> {
    vec!["install", "image-verifier", "--root", root, "--binary", BIN]
}

#[test]
fn proxy_and_image_verifier_share_containerds_config_and_uninstall_in_reverse() {
    let host = host();
    let r = host.path();
    let rs = r.to_str().unwrap();
    let before = tree(r);
    both(install_proxy(r, &[]));
    let with_proxy = tree(r);
    let verifier = |extra: &[&str]| {
        let mut args = verifier_args(rs);
        args.extend(extra);
        run_ok(&args)
    };
    let dry = verifier(&["--bin-dir", "/opt/verifiers", "--dry-run"]);
    assert!(
        dry.contains(&format!(
            "+\n+{}",
            STANZA.replace('\n', "\n+").trim_end_matches('+')
        )),
        "the stanza as containerd's docs give it:\n{dry}"
    );
    assert_same_tree(r, &with_proxy, "after a dry run");
    verifier(&["--bin-dir", "/opt/verifiers"]);
    let toml = std::fs::read_to_string(r.join("etc/containerd/config.toml")).unwrap();
    assert!(
        toml.contains("address = \"/run/containerd/containerd-real.sock\""),
        "the proxy's edit stays: {toml}"
    );
    assert!(toml.ends_with(STANZA), "{toml}");
    let wrapper = std::fs::read_to_string(r.join("opt/verifiers/portcullis")).unwrap();
    assert!(wrapper.contains(" verify-image --config "), "{wrapper}");
    let installed = tree(r);
    let again = verifier(&[]);
    assert!(
        again.contains("verifiers in /opt/verifiers") && again.contains("nothing to change"),
        "without --bin-dir the config's bin_dir is kept: {again}"
    );
    assert_same_tree(r, &installed, "a second install");

    let out = portcullis(&["uninstall", "proxy", "--root", rs]);
    let msg = text(&out);
    assert!(!out.status.success(), "{msg}");
    assert!(
        msg.contains(
            "/etc/containerd/config.toml changed since `portcullis install proxy` wrote it"
        ) && msg.contains("run `portcullis uninstall image-verifier` first"),
        "{msg}"
    );
    assert_same_tree(r, &installed, "after a refused uninstall");
    run_ok(&["uninstall", "image-verifier", "--root", rs]);
    assert_same_tree(r, &with_proxy, "after uninstalling the verifier");
    run_ok(&["uninstall", "proxy", "--root", rs]);
    assert_same_tree(r, &before, "after uninstalling both");
}

#[test]
fn a_config_the_verifier_stanza_cannot_be_added_to_safely_is_refused() {
    for (content, says) in [
        (
            "[plugins.cri]\n  sandbox_image = \"pause\"\n",
            "version 1 config",
        ),
        (
            "version = 2\n[plugins.\"io.containerd.image-verifier.v1.bindir\"]\n  bin_dir = 7\n",
            "bin_dir is not a directory path",
        ),
    ] {
        let host = host();
        let r = host.path();
        std::fs::write(r.join("etc/containerd/config.toml"), content).unwrap();
        let before = tree(r);
        let out = portcullis(&verifier_args(r.to_str().unwrap()));
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        assert!(
            msg.contains("/etc/containerd/config.toml") && msg.contains(says),
            "{msg}"
        );
        assert_same_tree(r, &before, content);
    }
}

/// Two installs at once would each plan against files the other replaces: the second waits.
#[test]
fn an_install_waits_while_another_holds_the_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let held = nix::fcntl::Flock::lock(
        std::fs::File::open(r).unwrap(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(verifier_args(r.to_str().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut first = [0u8; 64];
    let n = stderr.read(&mut first).unwrap();
    let said = String::from_utf8_lossy(&first[..n]).into_owned();
    assert!(
        said.starts_with("waiting for another portcullis install"),
        "{said}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "it went on while the root was held"
    );
    assert!(!r.join("opt").exists(), "nothing is written while waiting");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "still waiting after the root was released"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(r
        .join("opt/containerd/image-verifier/bin/portcullis")
        .is_file());
}
