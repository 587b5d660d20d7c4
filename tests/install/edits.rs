//! An operator's edit made between two installs: the second install builds on it, and
//! `uninstall` still will not put the original back over it without `--force`.

use super::{both, host, install_proxy, portcullis, run_ok, text, CONTAINERD_TOML};

#[test]
fn a_second_install_does_not_launder_an_edit_made_since_the_first() {
    let host = host();
    let r = host.path();
    let rs = r.to_str().unwrap();
    both(install_proxy(r, &[]));
    let toml = r.join("etc/containerd/config.toml");
    // The operator puts containerd back on its old address and adds a key of their own.
    let installed = std::fs::read_to_string(&toml).unwrap();
    let edited = installed.replace(
        "/run/containerd/containerd-real.sock",
        "/run/containerd/containerd.sock",
    ) + "\n[debug]\n  level = \"debug\"\n";
    std::fs::write(&toml, &edited).unwrap();

    let again = both(install_proxy(r, &[]));
    assert!(
        again.contains("note: /etc/containerd/config.toml was edited since `portcullis install proxy` first wrote it"),
        "{again}"
    );
    let now = std::fs::read_to_string(&toml).unwrap();
    assert!(
        now.contains("containerd-real.sock") && now.contains("level = \"debug\""),
        "the install builds on the edit: {now}"
    );

    let refused = portcullis(&["uninstall", "proxy", "--root", rs]);
    let msg = text(&refused);
    assert!(!refused.status.success(), "{msg}");
    assert!(
        msg.contains(
            "/etc/containerd/config.toml changed since `portcullis install proxy` wrote it"
        ),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(&toml).unwrap(),
        now,
        "nothing changed"
    );
    run_ok(&["uninstall", "proxy", "--root", rs, "--force"]);
    assert_eq!(std::fs::read_to_string(&toml).unwrap(), CONTAINERD_TOML);
}
