//! `portcullis install image-verifier`: what containerd 2.x needs to run the door — a
//! wrapper in its verifier `bin_dir` (containerd runs every file there with its own
//! arguments, so the wrapper adds the config file); `crate::install` adds the plugin's
//! stanza to containerd's config.

use std::path::Path;

/// containerd's documented `bin_dir`.
pub const BIN_DIR: &str = "/opt/containerd/image-verifier/bin";
/// The wrapper's name in `bin_dir`: containerd runs them in name order.
pub const WRAPPER: &str = "portcullis";

/// The wrapper script: `exec`, so containerd's timeout kill reaches the verifier itself.
pub fn wrapper(binary: &Path, config: &Path) -> String {
    format!(
        "#!/bin/sh\n# Written by `portcullis install image-verifier`: containerd's image verifier.\n\
         exec {} verify-image --config {} -- \"$@\"\n",
        shell_quote(&binary.display().to_string()),
        shell_quote(&config.display().to_string()),
    )
}

/// A note when the `containerd` on `PATH` predates 2.0, the first release with the image
/// verifier plugin: the files are in place, but nothing runs them until containerd is 2.x.
pub fn containerd_too_old() -> Option<String> {
    let out = std::process::Command::new("containerd")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = version_of(&text)?;
    let major: u32 = version.split('.').next()?.parse().ok()?;
    (major < 2).then(|| {
        format!("note: containerd {version} here has no image verifier plugin (it came with 2.0); the verifier runs once containerd is upgraded")
    })
}

/// The version in `containerd --version`'s line (`containerd REPO VERSION [REVISION]`).
fn version_of(line: &str) -> Option<&str> {
    let v = line.split_whitespace().nth(2)?;
    Some(v.strip_prefix('v').unwrap_or(v))
}

/// `s` as one POSIX shell word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_passes_containerds_arguments_after_the_config() {
        let w = wrapper(
            Path::new("/usr/bin/portcullis"),
            Path::new("/etc/p it's.yaml"),
        );
        assert!(w.starts_with("#!/bin/sh\n"));
        assert!(w.contains(
            r#"exec '/usr/bin/portcullis' verify-image --config '/etc/p it'\''s.yaml' -- "$@""#
        ));
    }

    #[test]
    fn containerds_version_line_is_read_as_it_prints_it() {
        let debian =
            "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n";
        assert_eq!(version_of(debian), Some("1.6.20~ds1"));
        let upstream = "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7\n";
        assert_eq!(version_of(upstream), Some("2.1.4"));
        assert_eq!(version_of("containerd\n"), None);
    }
}
