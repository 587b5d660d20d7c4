//! containerd's image-verifier binary contract (`io.containerd.image-verifier.v1.bindir`,
//! containerd 2.x `pkg/imageverifier/bindir`), read exactly as containerd speaks it:
//!
//! - argv: `-name <ref> -digest <digest> -stdin-media-type <type>`, plus `-operation
//!   pull|run` when containerd's `verify_on_run` is set. These are Go `flag` package
//!   arguments (one or two dashes, `-flag value` or `-flag=value`, parsing stops at `--` or
//!   the first non-flag); clap cannot read single-dash long flags, hence the small parser
//!   here.
//! - stdin: one JSON document of that media type, written by Go's `json.Encoder`. The
//!   documented one is an OCI descriptor (`application/vnd.oci.descriptor.v1+json`); the
//!   `verify_on_run` input (`application/vnd.containerd.image-verifier.input.v1+json`) is
//!   refused, naming the setting, since the run-time check is the proxy's and the CRI
//!   door's.
//! - stdout: the reason, which containerd keeps up to 32 KiB and shows to the puller;
//!   exit 0 admits the pull, anything else refuses it. Logs go to stderr.
//!
//! Anything that does not read as the contract says refuses the pull (exit 1) with the
//! reason: a verifier that cannot tell what it is asked must not say yes.

use oci_spec::image::Descriptor;

/// The media type containerd sends by default.
pub const DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
/// The media type containerd sends with `verify_on_run`.
pub const RUN_INPUT: &str = "application/vnd.containerd.image-verifier.input.v1+json";
/// containerd's `outputLimitBytes`: what it keeps of stdout.
pub const OUTPUT_LIMIT: usize = 32 << 10;
/// More than any descriptor: stdin is read up to this and refused beyond.
pub const INPUT_LIMIT: usize = 1 << 20;

/// One invocation, as containerd made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The image reference being pulled (`-name`).
    pub name: String,
    /// The resolved digest (`-digest`).
    pub digest: String,
    /// `-stdin-media-type`.
    pub media_type: String,
    /// `-operation` (containerd with `verify_on_run`): `pull` when absent.
    pub operation: String,
}

/// Reads argv (without the program name) with Go `flag` semantics.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Invocation, String> {
    let mut name = None;
    let mut digest = None;
    let mut media_type = None;
    let mut operation = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            return Err(format!(
                "unexpected argument {arg:?}: containerd passes flags only"
            ));
        }
        let flag = arg.trim_start_matches('-');
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (flag.to_owned(), None),
        };
        let slot = match flag.as_str() {
            "name" => &mut name,
            "digest" => &mut digest,
            "stdin-media-type" => &mut media_type,
            "operation" => &mut operation,
            other => return Err(format!("flag provided but not defined: -{other}")),
        };
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("flag needs an argument: -{flag}"))?,
        };
        *slot = Some(value);
    }
    let required = |v: Option<String>, flag: &str| {
        v.filter(|v| !v.is_empty())
            .ok_or_else(|| format!("-{flag} is required"))
    };
    Ok(Invocation {
        name: required(name, "name")?,
        digest: required(digest, "digest")?,
        media_type: required(media_type, "stdin-media-type")?,
        operation: operation.unwrap_or_else(|| "pull".to_owned()),
    })
}

/// The descriptor on stdin, checked against argv: the digest it names must be `-digest`
/// (containerd writes the same descriptor it resolved; a mismatch means the verifier is
/// not being asked what it thinks).
pub fn read_descriptor(invocation: &Invocation, stdin: &[u8]) -> Result<Descriptor, String> {
    match invocation.media_type.as_str() {
        DESCRIPTOR => {}
        RUN_INPUT => {
            return Err(format!(
                "stdin media type {RUN_INPUT} (containerd's verify_on_run) is not read: \
                 Portcullis checks images at container creation itself (proxy, CRI door); \
                 set verify_on_run = false"
            ))
        }
        other => {
            return Err(format!(
                "stdin media type {other:?} is not one Portcullis reads"
            ))
        }
    }
    if stdin.len() > INPUT_LIMIT {
        return Err(format!(
            "stdin holds more than {INPUT_LIMIT} bytes; a descriptor is far smaller"
        ));
    }
    let descriptor: Descriptor = serde_json::from_slice(stdin)
        .map_err(|e| format!("stdin is not an OCI descriptor: {e}"))?;
    let named = descriptor.digest().to_string();
    if named != invocation.digest {
        return Err(format!(
            "stdin's descriptor names {named}, the arguments {}",
            invocation.digest
        ));
    }
    Ok(descriptor)
}

/// `reason` as containerd will keep it: at most [`OUTPUT_LIMIT`] bytes, cut on a
/// character boundary, one line.
pub fn output(reason: &str) -> String {
    let line = reason.replace('\n', " ");
    if line.len() <= OUTPUT_LIMIT {
        return line;
    }
    let mark = " …(cut)";
    let mut end = OUTPUT_LIMIT - mark.len();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{mark}", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn containerds_arguments_are_read_as_go_flag_reads_them() {
        let i = parse_args(args(&[
            "-name",
            "127.0.0.1:5000/app:1",
            "-digest",
            DIGEST,
            "-stdin-media-type",
            DESCRIPTOR,
        ]))
        .unwrap();
        assert_eq!(i.name, "127.0.0.1:5000/app:1");
        assert_eq!(i.operation, "pull");
        let j = parse_args(args(&[
            "--name=x",
            "-digest=sha256:1",
            "--stdin-media-type",
            "t",
            "-operation",
            "run",
        ]))
        .unwrap();
        assert_eq!((j.name.as_str(), j.operation.as_str()), ("x", "run"));
        for (bad, why) in [
            (&["-name", "x", "-bogus", "1"][..], "not defined: -bogus"),
            (&["-name"][..], "needs an argument"),
            (
                &["-name", "x", "-digest", "d"][..],
                "-stdin-media-type is required",
            ),
            (&["extra"][..], "unexpected argument"),
        ] {
            let e = parse_args(args(bad)).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    fn invocation(media_type: &str) -> Invocation {
        Invocation {
            name: "r/app:1".into(),
            digest: DIGEST.into(),
            media_type: media_type.into(),
            operation: "pull".into(),
        }
    }

    #[test]
    fn the_descriptor_must_name_the_digest_asked_about() {
        let good = format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{DIGEST}","size":1609}}"#
        );
        let d = read_descriptor(&invocation(DESCRIPTOR), good.as_bytes()).unwrap();
        assert_eq!(d.size(), 1609);
        let other = good.replace("6c3c", "0000");
        let e = read_descriptor(&invocation(DESCRIPTOR), other.as_bytes()).unwrap_err();
        assert!(e.contains("names sha256:0000"), "{e}");
        for (media, input, why) in [
            (RUN_INPUT, good.as_str(), "verify_on_run"),
            ("text/plain", good.as_str(), "not one Portcullis reads"),
            (DESCRIPTOR, "{", "not an OCI descriptor"),
            (DESCRIPTOR, "[]", "not an OCI descriptor"),
        ] {
            let e = read_descriptor(&invocation(media), input.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{media} {input}: {e}");
        }
    }

    #[test]
    fn the_reason_fits_what_containerd_keeps() {
        assert_eq!(output("a\nb"), "a b");
        let long = "é".repeat(OUTPUT_LIMIT);
        let cut = output(&long);
        assert!(cut.len() <= OUTPUT_LIMIT && cut.ends_with("(cut)"));
    }
}
