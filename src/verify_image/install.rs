//! `portcullis install image-verifier`: what containerd 2.x needs to run the door — a
//! wrapper in its verifier `bin_dir` (containerd runs every file there with its own
//! arguments, so the wrapper adds the config file) and the plugin stanza of its config.

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

/// The `config.toml` stanza (containerd 2.x, config version 3) enabling the plugin.
pub fn containerd_config(bin_dir: &Path) -> String {
    format!(
        "[plugins.'io.containerd.image-verifier.v1.bindir']\n  \
         bin_dir = '{}'\n  max_verifiers = 10\n  per_verifier_timeout = '10s'\n",
        bin_dir.display()
    )
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
        assert!(containerd_config(Path::new(BIN_DIR))
            .contains("bin_dir = '/opt/containerd/image-verifier/bin'"));
    }
}
