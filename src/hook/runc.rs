//! `portcullis runc`: runc's command line, read just enough to find the subcommand, and on
//! `create`, `run` and `restore` the bundle and container id; and where the real runc is.
//!
//! Flags follow runc 1.1 (`runc --help`, urfave/cli: `--flag value`, `--flag=value`, and
//! the single-dash forms). Every flag of the global level and of the checked commands is
//! known by name and kind: a flag this build does not know might take a value, which would
//! shift the bundle or the id, so it is an error and the wrapper refuses the call (fail
//! closed). Other commands pass through untouched.

use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// runc's global flags: (takes a value?, names).
const GLOBAL_FLAGS: &[(bool, &[&str])] = &[
    (true, &["root", "log", "log-format", "criu", "rootless"]),
    (
        false,
        &["debug", "systemd-cgroup", "help", "h", "version", "v"],
    ),
];
/// `create` flags; `run` and `restore` add theirs.
const CREATE_FLAGS: &[(bool, &[&str])] = &[
    (
        true,
        &[
            "bundle",
            "b",
            "console-socket",
            "pidfd-socket",
            "pid-file",
            "preserve-fds",
        ],
    ),
    (false, &["no-pivot", "no-new-keyring", "help", "h"]),
];
const RUN_FLAGS: &[(bool, &[&str])] = &[(false, &["detach", "d", "keep", "no-subreaper"])];
const RESTORE_FLAGS: &[(bool, &[&str])] = &[
    (
        true,
        &[
            "bundle",
            "b",
            "console-socket",
            "pid-file",
            "image-path",
            "work-path",
            "manage-cgroups-mode",
            "empty-ns",
            "lsm-profile",
            "lsm-mount-context",
        ],
    ),
    (
        false,
        &[
            "detach",
            "d",
            "no-subreaper",
            "no-pivot",
            "tcp-established",
            "ext-unix-sk",
            "shell-job",
            "file-locks",
            "auto-dedup",
            "lazy-pages",
            "help",
            "h",
        ],
    ),
];

/// `exec` flags.
const EXEC_FLAGS: &[(bool, &[&str])] = &[
    (
        true,
        &[
            "console-socket",
            "pidfd-socket",
            "cwd",
            "env",
            "e",
            "user",
            "u",
            "additional-gids",
            "g",
            "process",
            "p",
            "apparmor",
            "process-label",
            "pid-file",
            "preserve-fds",
            "cgroup",
            "cap",
            "c",
        ],
    ),
    (
        false,
        &[
            "tty",
            "t",
            "detach",
            "d",
            "no-new-privs",
            "ignore-paused",
            "help",
            "h",
        ],
    ),
];

/// What the wrapper needs from one runc invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuncCall {
    /// `--root` (containerd: `/run/containerd/runc/<namespace>`).
    pub root: Option<PathBuf>,
    /// `--log` and `--log-format`: where runc's own errors go (containerd reads them back).
    pub log: Option<PathBuf>,
    pub log_json: bool,
    /// The subcommand, if any (`runc --version` has none).
    pub command: Option<String>,
    /// Set for `create`, `run` and `restore`.
    pub create: Option<Create>,
    /// Set for `exec`.
    pub exec: Option<Exec>,
}

/// `runc exec`: the process it will run, as flags or a process file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Exec {
    pub id: String,
    /// `--process`: a runtime-spec Process JSON file, used instead of the flags below.
    pub process: Option<PathBuf>,
    /// `--cap`: added to every capability set of the container's process.
    pub caps: Vec<String>,
    /// `--user UID[:GID]`.
    pub user: Option<String>,
    /// `--additional-gids`.
    pub additional_gids: Vec<String>,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    /// `--no-new-privs`: can only turn the setting on.
    pub no_new_privs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    /// `--bundle`/`-b`; `None` is the current directory.
    pub bundle: Option<PathBuf>,
    pub id: String,
    /// `restore`: the container comes from a checkpoint image as well as the bundle.
    pub restore: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("runc flag --{0} needs a value")]
    MissingValue(String),
    #[error("runc {0}: no container id")]
    NoId(String),
    #[error("runc {0}: unknown flag {1:?}; the wrapper cannot tell where the bundle and the container id are, so it refuses the call")]
    UnknownFlag(String, String),
    #[error("runc {0}: more than one container id ({1:?})")]
    ExtraArgument(String, String),
}

/// `--name=value`, `--name`, `-name` → (name, inline value).
fn flag(arg: &str) -> Option<(&str, Option<&str>)> {
    let name = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if name.is_empty() {
        return None;
    }
    Some(match name.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    })
}

/// Whether `name` takes a value, among `known` (`None`: not a flag of this level).
fn takes_value(known: &[&[(bool, &[&str])]], name: &str) -> Option<bool> {
    known
        .iter()
        .flat_map(|level| level.iter())
        .find(|(_, names)| names.contains(&name))
        .map(|(value, _)| *value)
}

/// A flag's value: written inline (`--root=/r`), else the next argument.
fn value_of<'a>(
    name: &str,
    inline: Option<&str>,
    rest: &mut impl Iterator<Item = &'a String>,
) -> Result<String, ArgsError> {
    match inline {
        Some(v) => Ok(v.to_owned()),
        None => rest
            .next()
            .cloned()
            .ok_or_else(|| ArgsError::MissingValue(name.to_owned())),
    }
}

pub fn parse(args: &[String]) -> Result<RuncCall, ArgsError> {
    let mut call = RuncCall::default();
    let mut rest = args.iter();
    // Global flags, up to the subcommand.
    while let Some(arg) = rest.next() {
        let Some((name, inline)) = flag(arg) else {
            call.command = Some(arg.clone());
            break;
        };
        match takes_value(&[GLOBAL_FLAGS], name) {
            None => return Err(ArgsError::UnknownFlag("(global)".into(), arg.clone())),
            // A boolean's inline value (`--debug=false`) is its own.
            Some(false) => continue,
            Some(true) => {}
        }
        let value = value_of(name, inline, &mut rest)?;
        match name {
            "root" => call.root = Some(value.into()),
            "log" => call.log = Some(value.into()),
            "log-format" => call.log_json = value == "json",
            _ => {}
        }
    }
    let Some(command) = call.command.clone() else {
        return Ok(call);
    };
    let flags: &[&[(bool, &[&str])]] = match command.as_str() {
        "create" => &[CREATE_FLAGS],
        "run" => &[CREATE_FLAGS, RUN_FLAGS],
        "restore" => &[RESTORE_FLAGS],
        "exec" => {
            call.exec = Some(parse_exec(&mut rest)?);
            return Ok(call);
        }
        _ => return Ok(call),
    };
    let mut bundle = None;
    let mut positional = Vec::new();
    while let Some(arg) = rest.next() {
        if arg == "--" {
            positional.extend(rest.by_ref().cloned());
            break;
        }
        let Some((name, inline)) = flag(arg) else {
            positional.push(arg.clone());
            continue;
        };
        match takes_value(flags, name) {
            None => return Err(ArgsError::UnknownFlag(command, arg.clone())),
            Some(false) => continue,
            Some(true) => {}
        }
        let value = value_of(name, inline, &mut rest)?;
        if name == "bundle" || name == "b" {
            bundle = Some(PathBuf::from(value));
        }
    }
    let id = positional.pop().ok_or(ArgsError::NoId(command.clone()))?;
    if let Some(extra) = positional.pop() {
        return Err(ArgsError::ExtraArgument(command, extra));
    }
    call.create = Some(Create {
        bundle,
        id,
        restore: command == "restore",
    });
    Ok(call)
}

/// `runc exec [flags] ID COMMAND…`: flags end at the id (runc stops reading flags there).
fn parse_exec<'a>(rest: &mut impl Iterator<Item = &'a String>) -> Result<Exec, ArgsError> {
    let mut exec = Exec::default();
    while let Some(arg) = rest.next() {
        let Some((name, inline)) = flag(arg) else {
            exec.id = arg.clone();
            return Ok(exec);
        };
        match takes_value(&[EXEC_FLAGS], name) {
            None => return Err(ArgsError::UnknownFlag("exec".into(), arg.clone())),
            Some(false) => {
                if name == "no-new-privs" {
                    exec.no_new_privs = inline.is_none_or(|v| v != "false");
                }
                continue;
            }
            Some(true) => {}
        }
        let value = value_of(name, inline, rest)?;
        match name {
            "process" | "p" => exec.process = Some(value.into()),
            "cap" | "c" => exec.caps.push(value),
            "user" | "u" => exec.user = Some(value),
            "additional-gids" | "g" => exec.additional_gids.push(value),
            "apparmor" => exec.apparmor = Some(value),
            "process-label" => exec.process_label = Some(value),
            _ => {}
        }
    }
    Err(ArgsError::NoId("exec".into()))
}

/// The real runc: `explicit`, else the first `runc` on `PATH` that is an executable (ELF)
/// other than this binary — a shell shim named `runc` is skipped, so it cannot loop —,
/// else `/usr/sbin/runc`, `/usr/bin/runc`.
pub fn find_runc(explicit: Option<&Path>, path: Option<OsString>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let me = std::env::current_exe().and_then(|p| p.canonicalize()).ok();
    let on_path = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("runc"));
    let fallbacks = ["/usr/sbin/runc", "/usr/bin/runc"].map(PathBuf::from);
    on_path
        .chain(fallbacks)
        .find(|p| is_elf(p) && p.canonicalize().ok() != me)
}

fn is_elf(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return false;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// Appends a refusal to runc's `--log` the way runc logs its own errors, so containerd's
/// shim (which reports the last error line of that log) shows our message.
pub fn log_refusal(call: &RuncCall, message: &str) {
    let Some(log) = &call.log else { return };
    let time = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
    let line = if call.log_json {
        serde_json::json!({"level": "error", "msg": message, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level=error msg={message:?}")
    };
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &str) -> Result<RuncCall, ArgsError> {
        parse(
            &args
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn containerd_create() {
        let c = p("--root /run/containerd/runc/k8s.io --log /run/x/log.json --log-format json --systemd-cgroup create --bundle /run/b --pid-file /run/b/init.pid --console-socket /tmp/c.sock abc")
            .unwrap();
        assert_eq!(c.root, Some("/run/containerd/runc/k8s.io".into()));
        assert_eq!(c.log, Some("/run/x/log.json".into()));
        assert!(c.log_json);
        assert_eq!(c.command.as_deref(), Some("create"));
        assert_eq!(
            c.create,
            Some(Create {
                bundle: Some("/run/b".into()),
                id: "abc".into(),
                restore: false,
            })
        );
    }

    #[test]
    fn run_forms_and_defaults() {
        let c = p("--debug --root=/r run -d -b=/bb --no-pivot --keep x1").unwrap();
        assert_eq!(c.root, Some("/r".into()));
        assert_eq!(
            c.create,
            Some(Create {
                bundle: Some("/bb".into()),
                id: "x1".into(),
                restore: false,
            })
        );
        // Bundle defaults to the current directory.
        let c = p("-rootless false create --preserve-fds 3 id2").unwrap();
        assert_eq!(
            c.create,
            Some(Create {
                bundle: None,
                id: "id2".into(),
                restore: false,
            })
        );
        assert_eq!(
            p("create --bundle /b"),
            Err(ArgsError::NoId("create".into()))
        );
        assert_eq!(p("--root"), Err(ArgsError::MissingValue("root".into())));
    }

    #[test]
    fn restore_is_checked_like_create() {
        let c = p("--root /r restore --image-path /ckpt --work-path /w --tcp-established -d --bundle /b --pid-file /p c9").unwrap();
        assert_eq!(
            c.create,
            Some(Create {
                bundle: Some("/b".into()),
                id: "c9".into(),
                restore: true,
            })
        );
    }

    #[test]
    fn arguments_it_cannot_place_are_errors() {
        // An unknown flag may take a value that would pass for the id or hide the bundle.
        assert!(matches!(
            p("create --new-flag /evil/bundle --bundle /b id"),
            Err(ArgsError::UnknownFlag(..))
        ));
        assert!(matches!(
            p("--new-global x create --bundle /b id"),
            Err(ArgsError::UnknownFlag(..))
        ));
        assert!(matches!(
            p("run --bundle /b id extra"),
            Err(ArgsError::ExtraArgument(..))
        ));
        assert!(matches!(
            p("restore --image-path"),
            Err(ArgsError::MissingValue(..))
        ));
        // Flags of one command are not another's: `--keep` is run's.
        assert!(matches!(
            p("create --keep --bundle /b id"),
            Err(ArgsError::UnknownFlag(..))
        ));
        // After `--`, everything is positional.
        let c = p("create --bundle /b -- id").unwrap();
        assert_eq!(c.create.unwrap().id, "id");
    }

    #[test]
    fn exec_flags_up_to_the_id() {
        let c = p("--root /r exec -t --cap CAP_SYS_ADMIN -c=CAP_NET_ADMIN --user 0:0 -g 10 --no-new-privs --apparmor unconfined --process-label x c1 sh -c --cap").unwrap();
        let e = c.exec.unwrap();
        assert_eq!(e.id, "c1");
        assert_eq!(e.caps, ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]);
        assert_eq!(e.user.as_deref(), Some("0:0"));
        assert_eq!(e.additional_gids, ["10"]);
        assert!(e.no_new_privs);
        assert_eq!(e.apparmor.as_deref(), Some("unconfined"));
        assert_eq!(e.process_label.as_deref(), Some("x"));
        let e = p("exec --process /tmp/p.json c2").unwrap().exec.unwrap();
        assert_eq!(e.process, Some("/tmp/p.json".into()));
        assert!(matches!(
            p("exec --privileged c3 sh"),
            Err(ArgsError::UnknownFlag(..))
        ));
        assert!(matches!(p("exec --cap"), Err(ArgsError::MissingValue(..))));
        assert!(matches!(p("exec -t"), Err(ArgsError::NoId(..))));
    }

    #[test]
    fn other_commands_pass() {
        for args in [
            "start abc",
            "--root /r delete --force abc",
            "state abc",
            "--version",
            "features",
            "",
        ] {
            let c = p(args).unwrap();
            assert_eq!(c.create, None, "{args}");
        }
        assert_eq!(
            p("--root /r kill abc 9").unwrap().command.as_deref(),
            Some("kill")
        );
    }

    #[test]
    fn finds_a_real_runc_and_skips_shims() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("runc");
        std::fs::write(&shim, "#!/bin/sh\nexec portcullis runc \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let found = find_runc(None, Some(dir.path().as_os_str().to_owned()));
        assert_ne!(found.as_deref(), Some(shim.as_path()));
        assert_eq!(
            find_runc(Some(Path::new("/x/runc")), None),
            Some(PathBuf::from("/x/runc"))
        );
    }

    #[test]
    fn refusal_goes_to_runc_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.json");
        let call = RuncCall {
            log: Some(log.clone()),
            log_json: true,
            ..Default::default()
        };
        log_refusal(&call, "portcullis: denied");
        let line: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
        assert_eq!(
            (line["level"].as_str(), line["msg"].as_str()),
            (Some("error"), Some("portcullis: denied"))
        );
    }
}
