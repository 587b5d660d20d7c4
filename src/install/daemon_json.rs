//! dockerd's `/etc/docker/daemon.json`: `"containerd"` set to the proxy's socket, every
//! other key kept with its value and in its order. The top level is read in order as
//! (key, raw JSON text) pairs — each value's text is written back as it was — so neither
//! the crate-wide `serde_json::Map` (sorted) nor any value is touched.

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context as _};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The daemon.json key naming containerd's socket (`dockerd --containerd`).
pub const KEY: &str = "containerd";

/// The new daemon.json text, `None` if it already points at `socket`. `text` is `None`
/// for an absent file; `file` names it in errors. Invalid JSON, or JSON that is not an
/// object, is refused (dockerd would not start on it either).
pub fn edit(text: Option<&str>, file: &Path, socket: &str) -> anyhow::Result<Option<String>> {
    let text = text.filter(|t| !t.trim().is_empty()).unwrap_or("{}");
    let fix = "fix it (dockerd would not start on it either) and run the install again";
    let pairs =
        ordered(text).with_context(|| format!("{}: not a JSON object; {fix}", file.display()))?;
    let wanted = serde_json::to_string(socket)?;
    let mut found = false;
    let mut out = Vec::with_capacity(pairs.len() + 1);
    for (key, raw) in &pairs {
        if key == KEY {
            if found {
                bail!(
                    "{}: `{KEY}` is set twice; keep one and run the install again",
                    file.display()
                );
            }
            found = true;
            let current: serde_json::Value = serde_json::from_str(raw.get())?;
            if current.as_str() == Some(socket) {
                return Ok(None);
            }
            out.push((key.as_str(), wanted.as_str()));
        } else {
            out.push((key.as_str(), raw.get()));
        }
    }
    if !found {
        out.push((KEY, wanted.as_str()));
    }
    let indent = indent(text);
    let mut s = String::from("{\n");
    for (i, (key, raw)) in out.iter().enumerate() {
        let comma = if i + 1 < out.len() { "," } else { "" };
        s += &format!("{indent}{}: {raw}{comma}\n", serde_json::to_string(key)?);
    }
    s += "}\n";
    Ok(Some(s))
}

/// The indentation of the file's first member, if it starts on a line of its own (so that
/// the diff shows the changed lines only); two spaces otherwise.
fn indent(text: &str) -> &str {
    let after = text.trim_start().strip_prefix('{').unwrap_or_default();
    let Some(line) = after
        .trim_start_matches([' ', '\t', '\r'])
        .strip_prefix('\n')
    else {
        return "  ";
    };
    let n = line.len() - line.trim_start_matches([' ', '\t']).len();
    if n == 0 || !line[n..].starts_with('"') {
        return "  ";
    }
    &line[..n]
}

/// The top-level object's members in file order, values as their raw text.
fn ordered(text: &str) -> serde_json::Result<Vec<(String, Box<RawValue>)>> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, Box<RawValue>)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let pairs = de.deserialize_map(Pairs)?;
    de.end()?;
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCK: &str = "/run/containerd/containerd.sock";

    #[test]
    fn keeps_the_files_indentation() {
        let text = "{\n\t\"debug\": true\n}\n";
        let out = edit(Some(text), Path::new("d"), SOCK).unwrap().unwrap();
        assert_eq!(
            out,
            "{\n\t\"debug\": true,\n\t\"containerd\": \"/run/containerd/containerd.sock\"\n}\n"
        );
        let one_line = edit(Some("{\"debug\": true}"), Path::new("d"), SOCK)
            .unwrap()
            .unwrap();
        assert!(
            one_line.starts_with("{\n  \"debug\": true,\n"),
            "{one_line}"
        );
    }

    #[test]
    fn sets_the_key_keeping_the_others_in_order() {
        let text = "{\n  \"log-driver\": \"journald\",\n  \"storage-driver\": \"overlay2\",\n  \"default-ulimits\": {\n    \"nofile\": {\"Name\": \"nofile\", \"Soft\": 64000, \"Hard\": 64000}\n  },\n  \"debug\": false\n}\n";
        let out = edit(Some(text), Path::new("d"), SOCK).unwrap().unwrap();
        assert_eq!(
            out,
            "{\n  \"log-driver\": \"journald\",\n  \"storage-driver\": \"overlay2\",\n  \"default-ulimits\": {\n    \"nofile\": {\"Name\": \"nofile\", \"Soft\": 64000, \"Hard\": 64000}\n  },\n  \"debug\": false,\n  \"containerd\": \"/run/containerd/containerd.sock\"\n}\n"
        );
        assert_eq!(edit(Some(&out), Path::new("d"), SOCK).unwrap(), None);
        let moved = edit(Some(&out), Path::new("d"), "/run/p.sock")
            .unwrap()
            .unwrap();
        assert!(
            moved.contains("\"debug\": false,\n  \"containerd\": \"/run/p.sock\"\n"),
            "{moved}"
        );
    }

    #[test]
    fn absent_empty_and_broken_files() {
        let want = "{\n  \"containerd\": \"/run/containerd/containerd.sock\"\n}\n";
        assert_eq!(edit(None, Path::new("d"), SOCK).unwrap().unwrap(), want);
        assert_eq!(
            edit(Some(" \n"), Path::new("d"), SOCK).unwrap().unwrap(),
            want
        );
        for bad in [
            "{\"a\": 1,}",
            "[1]",
            "{\"a\": 1} x",
            "{\"containerd\": 1, \"containerd\": 2}",
        ] {
            let err = edit(Some(bad), Path::new("/etc/docker/daemon.json"), SOCK).unwrap_err();
            assert!(
                format!("{err:#}").contains("/etc/docker/daemon.json"),
                "{bad}: {err:#}"
            );
        }
    }
}
