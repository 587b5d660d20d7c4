//! containerd's `config.toml`: move its gRPC socket to a root-only path so that the proxy
//! can take the address every client dials. Edited with `toml_edit`, so the operator's
//! comments, order and layout stay; only `[grpc] address`, `uid` and `gid` change. The
//! `[grpc]` table is the same in config versions 1, 2 and 3.

use std::path::Path;

use anyhow::bail;
use toml_edit::{DocumentMut, Item, Table, Value};

/// containerd's address when its config names none.
pub const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";

/// The config written when there is none: version 2 is read by containerd 1.5 to 2.x.
pub fn minimal(real: &str) -> String {
    format!(
        "# Written by `portcullis install proxy`: containerd listens on a root-only socket and\n\
         # the Portcullis proxy takes its well-known address.\n\
         version = 2\n\n[grpc]\n  address = {}\n  uid = 0\n  gid = 0\n",
        Value::from(real)
    )
}

/// The edited config and containerd's address before the edit (`None` when it already
/// listens on `real`: installed before).
#[derive(Debug)]
pub struct Edited {
    pub text: String,
    pub previous: Option<String>,
}

/// Points `[grpc]` at `real`, owned by root (uid 0, gid 0). `file` names the config in
/// errors; a config that does not parse is refused with its line and column.
pub fn edit(text: &str, file: &Path, real: &str) -> anyhow::Result<Edited> {
    let mut doc = parse(text, file)?;
    if !doc.contains_key("grpc") {
        doc.insert("grpc", Item::Table(Table::new()));
    }
    let Some(grpc) = doc["grpc"].as_table_like_mut() else {
        bail!(
            "{}: `grpc` is not a table; containerd expects `[grpc]` with `address`",
            file.display()
        );
    };
    let previous = match grpc.get("address") {
        None => Some(DEFAULT_ADDRESS.to_owned()),
        Some(item) => match item.as_str() {
            Some(a) if a == real => None,
            Some("") => Some(DEFAULT_ADDRESS.to_owned()),
            Some(a) => Some(a.to_owned()),
            None => bail!(
                "{}: grpc.address is not a string; set it to the socket path containerd listens on",
                file.display()
            ),
        },
    };
    let indent = indent_of(grpc, "address");
    set(grpc, "address", Value::from(real), &indent);
    set(grpc, "uid", Value::from(0i64), &indent);
    set(grpc, "gid", Value::from(0i64), &indent);
    Ok(Edited {
        text: doc.to_string(),
        previous,
    })
}

/// containerd's config as `toml_edit` keeps it; `file` names it in the error, with the
/// line and column of what does not parse.
pub(super) fn parse(text: &str, file: &Path) -> anyhow::Result<DocumentMut> {
    text.parse().map_err(|e: toml_edit::TomlError| {
        anyhow::anyhow!(
            "{}: {}\ncontainerd would not start on it either: fix it and run the install again",
            file.display(),
            e.to_string().trim_end()
        )
    })
}

/// The whitespace before `key` on its line, so that keys added beside it line up.
fn indent_of(table: &dyn toml_edit::TableLike, key: &str) -> String {
    let prefix = table
        .get_key_value(key)
        .and_then(|(k, _)| {
            k.leaf_decor()
                .prefix()
                .and_then(|p| p.as_str().map(str::to_owned))
        })
        .unwrap_or_default();
    let last = prefix.rsplit('\n').next().unwrap_or_default();
    last.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// Sets `key` to `value` unless it holds it already, keeping the comments around it; a
/// new key gets `indent`.
pub(super) fn set(table: &mut dyn toml_edit::TableLike, key: &str, mut value: Value, indent: &str) {
    match table.get_mut(key) {
        Some(Item::Value(old)) => {
            if old.to_string().trim() == value.to_string().trim() {
                return;
            }
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        _ => {
            table.insert(key, Item::Value(value));
            if let Some(mut k) = table.key_mut(key) {
                k.leaf_decor_mut().set_prefix(indent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "/run/containerd/containerd-real.sock";

    #[test]
    fn moves_the_address_keeping_comments_and_other_tables() {
        let text = "# my containerd\nversion = 2\nroot = \"/var/lib/containerd\"\n\n\
                    [grpc]\n  # where clients dial\n  address = \"/run/containerd/containerd.sock\" # keep me\n  max_recv_message_size = 16777216\n\n\
                    [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n";
        let e = edit(text, Path::new("/etc/containerd/config.toml"), REAL).unwrap();
        assert_eq!(e.previous.as_deref(), Some(DEFAULT_ADDRESS));
        assert_eq!(
            e.text,
            "# my containerd\nversion = 2\nroot = \"/var/lib/containerd\"\n\n\
             [grpc]\n  # where clients dial\n  address = \"/run/containerd/containerd-real.sock\" # keep me\n  max_recv_message_size = 16777216\n  uid = 0\n  gid = 0\n\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n"
        );
        let again = edit(&e.text, Path::new("c"), REAL).unwrap();
        assert_eq!(again.previous, None);
        assert_eq!(again.text, e.text, "a second edit changes nothing");
    }

    #[test]
    fn versions_one_and_three_absent_grpc_and_inline_tables() {
        for text in ["version = 3\n", "", "version = 1\n[grpc]\naddress = \"\"\n"] {
            let e = edit(text, Path::new("c"), REAL).unwrap();
            assert_eq!(e.previous.as_deref(), Some(DEFAULT_ADDRESS), "{text}");
            let doc: DocumentMut = e.text.parse().unwrap();
            assert_eq!(doc["grpc"]["address"].as_str(), Some(REAL));
            assert_eq!(doc["grpc"]["uid"].as_integer(), Some(0));
        }
        let e = edit(
            "grpc = { address = \"/run/k3s/c.sock\" }\n",
            Path::new("c"),
            REAL,
        )
        .unwrap();
        assert_eq!(e.previous.as_deref(), Some("/run/k3s/c.sock"));
        let m = minimal(REAL);
        assert_eq!(edit(&m, Path::new("c"), REAL).unwrap().text, m);
    }

    #[test]
    fn broken_toml_names_the_file_and_line() {
        let err = edit(
            "version = 2\n[grpc\naddress = 1\n",
            Path::new("/etc/c.toml"),
            REAL,
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("/etc/c.toml") && msg.contains("line 2"),
            "{msg}"
        );
        let err = edit("grpc = 3\n", Path::new("/etc/c.toml"), REAL).unwrap_err();
        assert!(err.to_string().contains("`grpc` is not a table"), "{err}");
    }
}
