//! containerd's `config.toml` for `install image-verifier`: the stanza of containerd 2.x's
//! `bindir` image verifier, as its docs/image-verification.md gives it. containerd runs
//! every file in `bin_dir` before a pull; the stanza names the directory the wrapper goes
//! into. Edited with `toml_edit` like the proxy's `[grpc]` edit: only the stanza's keys
//! change, and only those the operator has not set (their `max_verifiers` and
//! `per_verifier_timeout` stay).
//!
//! Plugins are named by their full URI only from config version 2 on (version 1, the
//! default when `version` is absent, uses short names that containerd 2.x migrates). A
//! version 1 file with plugin tables is refused, not guessed at.

use std::path::Path;

use anyhow::bail;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::containerd_toml::{parse, set};

/// The plugin's name in config versions 2 and 3.
pub const PLUGIN: &str = "io.containerd.image-verifier.v1.bindir";
/// The indent of a key the stanza gains, as in containerd's docs.
const INDENT: &str = "  ";

/// The edited config and the `bin_dir` the wrapper goes into.
#[derive(Debug)]
pub struct Edited {
    pub text: String,
    pub bin_dir: String,
}

/// Sets the verifier stanza in `text` (`None`: no config yet). `wanted` is `--bin-dir`;
/// without it, the `bin_dir` the config already names stays, else `default`.
pub fn edit(
    text: Option<&str>,
    file: &Path,
    wanted: Option<&str>,
    default: &str,
) -> anyhow::Result<Edited> {
    let mut doc = parse(text.unwrap_or_default(), file)?;
    versioned(&mut doc, file)?;
    // A `[plugins]` header of our own would be an empty table; the operator's stays.
    let fresh = !doc.contains_key("plugins");
    let plugins = table_at(doc.as_table_mut(), "plugins", file)?;
    if fresh {
        plugins.set_implicit(true);
    }
    let stanza = table_at(plugins, PLUGIN, file)?;
    let named = match stanza.get("bin_dir") {
        None => None,
        Some(item) => match item.as_str() {
            Some(dir) if !dir.is_empty() => Some(dir.to_owned()),
            _ => bail!(
                "{}: plugins.\"{PLUGIN}\".bin_dir is not a directory path; set it to a string such as \"{default}\"",
                file.display()
            ),
        },
    };
    let bin_dir = wanted
        .map(str::to_owned)
        .or(named)
        .unwrap_or_else(|| default.to_owned());
    if !bin_dir.starts_with('/') {
        bail!("--bin-dir {bin_dir}: containerd needs an absolute path");
    }
    set(stanza, "bin_dir", Value::from(bin_dir.as_str()), INDENT);
    // containerd's defaults, written out as its docs do; the operator's own values stay.
    for (key, value) in [
        ("max_verifiers", Value::from(10i64)),
        ("per_verifier_timeout", Value::from("10s")),
    ] {
        if !stanza.contains_key(key) {
            set(stanza, key, value, INDENT);
        }
    }
    Ok(Edited {
        text: doc.to_string(),
        bin_dir,
    })
}

/// Makes sure the config names plugins by their full URI: version 2 or 3 as it is, a
/// version 1 file without plugin tables raised to 2 (the two differ only in plugin names).
fn versioned(doc: &mut DocumentMut, file: &Path) -> anyhow::Result<()> {
    let version = match doc.get("version") {
        None => 1,
        Some(v) => match v.as_integer() {
            Some(n @ 1..=3) => n,
            _ => bail!(
                "{}: version = {} is not a containerd config version (1, 2 or 3)",
                file.display(),
                v.to_string().trim()
            ),
        },
    };
    if version >= 2 {
        return Ok(());
    }
    if doc.contains_key("plugins") {
        bail!(
            "{}: a version 1 config (no `version`, or `version = 1`) names plugins by short names; the image verifier needs containerd 2.x, which reads versions 2 and 3: run `containerd config migrate > new.toml` and install over the result",
            file.display()
        );
    }
    let mut key = toml_edit::Key::new("version");
    if doc.is_empty() {
        key.leaf_decor_mut().set_prefix("");
    }
    doc.insert_formatted(&key, Item::Value(Value::from(2i64)));
    doc.sort_values_by(|a, _, b, _| (a.get() != "version").cmp(&(b.get() != "version")));
    Ok(())
}

/// The table `key` in `parent`, created if absent.
fn table_at<'a>(parent: &'a mut Table, key: &str, file: &Path) -> anyhow::Result<&'a mut Table> {
    let item = parent
        .entry(key)
        .or_insert_with(|| Item::Table(Table::new()));
    if let Some(inline) = item.as_inline_table() {
        *item = Item::Table(inline.clone().into_table());
    }
    match item.as_table_mut() {
        Some(t) => Ok(t),
        None => bail!(
            "{}: `{key}` is not a table; containerd expects [plugins.\"{PLUGIN}\"]",
            file.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "/opt/containerd/image-verifier/bin";

    fn edited(text: Option<&str>, wanted: Option<&str>) -> Edited {
        edit(
            text,
            Path::new("/etc/containerd/config.toml"),
            wanted,
            DEFAULT,
        )
        .unwrap()
    }

    #[test]
    fn adds_the_documented_stanza_and_a_second_edit_changes_nothing() {
        let text =
            "# mine\nversion = 3\n\n[grpc]\n  address = \"/run/containerd/containerd.sock\"\n";
        let e = edited(Some(text), None);
        assert_eq!(e.bin_dir, DEFAULT);
        assert_eq!(
            e.text,
            format!(
                "{text}\n[plugins.\"{PLUGIN}\"]\n  bin_dir = \"{DEFAULT}\"\n  max_verifiers = 10\n  per_verifier_timeout = \"10s\"\n"
            )
        );
        let again = edited(Some(&e.text), None);
        assert_eq!(again.text, e.text);
        assert_eq!(edited(Some(&e.text), Some(DEFAULT)).text, e.text);
    }

    #[test]
    fn keeps_the_operators_bin_dir_and_values_unless_told_otherwise() {
        let text = "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"pause\"\n  [plugins.\"io.containerd.image-verifier.v1.bindir\"]\n    bin_dir = \"/etc/verifiers\" # ours\n    per_verifier_timeout = \"30s\"\n";
        let e = edited(Some(text), None);
        assert_eq!(e.bin_dir, "/etc/verifiers");
        assert!(
            e.text.starts_with(text),
            "the operator's tables stay as they were: {}",
            e.text
        );
        let doc: DocumentMut = e.text.parse().unwrap();
        let stanza = &doc["plugins"][PLUGIN];
        assert_eq!(stanza["per_verifier_timeout"].as_str(), Some("30s"));
        assert_eq!(stanza["max_verifiers"].as_integer(), Some(10));
        assert_eq!(
            doc["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"].as_str(),
            Some("pause")
        );
        let explicit = "version = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"pause\"\n";
        let added = edited(Some(explicit), None);
        assert!(
            added.text.starts_with(explicit),
            "[plugins] stays: {}",
            added.text
        );
        let moved = edited(Some(&e.text), Some("/opt/v"));
        assert_eq!(moved.bin_dir, "/opt/v");
        assert!(
            moved.text.contains("bin_dir = \"/opt/v\" # ours"),
            "{}",
            moved.text
        );
    }

    #[test]
    fn no_config_or_a_version_one_file_without_plugins_becomes_version_two() {
        let fresh = edited(None, None);
        assert!(fresh.text.starts_with("version = 2\n"), "{}", fresh.text);
        let doc: DocumentMut = fresh.text.parse().unwrap();
        assert_eq!(doc["plugins"][PLUGIN]["bin_dir"].as_str(), Some(DEFAULT));
        let old = edited(Some("root = \"/var/lib/containerd\"\n"), None);
        assert!(old.text.starts_with("version = 2\nroot = "), "{}", old.text);
    }

    #[test]
    fn what_cannot_be_edited_safely_is_refused_naming_the_file() {
        let file = Path::new("/etc/c.toml");
        for (text, says) in [
            ("[plugins.cri]\nsandbox_image = \"p\"\n", "version 1 config"),
            ("version = 7\n", "not a containerd config version"),
            ("version = 2\nplugins = 3\n", "`plugins` is not a table"),
            (
                "version = 2\n[plugins.\"io.containerd.image-verifier.v1.bindir\"]\nbin_dir = 1\n",
                "bin_dir is not a directory path",
            ),
            ("version = 2\n[plugins\n", "line 2"),
        ] {
            let err = format!("{:#}", edit(Some(text), file, None, DEFAULT).unwrap_err());
            assert!(
                err.contains("/etc/c.toml") && err.contains(says),
                "{text}: {err}"
            );
        }
        let err = edit(Some("version = 2\n"), file, Some("rel/dir"), DEFAULT).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[test]
    fn an_inline_stanza_is_edited_in_place() {
        let text = "version = 3\nplugins = { \"io.containerd.image-verifier.v1.bindir\" = { bin_dir = \"/v\" } }\n";
        let e = edited(Some(text), None);
        assert_eq!(e.bin_dir, "/v");
        let doc: DocumentMut = e.text.parse().unwrap();
        assert_eq!(
            doc["plugins"][PLUGIN]["max_verifiers"].as_integer(),
            Some(10)
        );
    }
}
