//! `convert::strict` against Go's own decoder: what Portcullis judges must mean to runc exactly
//! what the caller sent.
//!
//! `tests/fixtures/gojson/main.go` (built offline in GOPATH mode against Debian's
//! `golang-github-opencontainers-specs-dev`) decodes documents into `specs.Spec` or
//! `specs.Process` with `encoding/json`, as runc and containerd do. For every document of the
//! corpus, either the strict parser refuses it, or Go's reading of the raw bytes equals Go's
//! reading of `serde_json::to_vec` of the value we judge. Each document also states which of
//! the two it must be, so the known attacks are checked to be refused, and valid specs to be
//! admitted. A control shows that the attacks are real: Go reads each one's payload where
//! the exact-key view of plain `serde_json` (what the conversion reads) sees the benign value.
//! `gojson/mutate.rs` runs the same property over seeded mutations of the real specs, and
//! `gojson/doors.rs` checks that each door parses with the strict parser (no Go needed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use portcullis::convert::pod::ConvertError;
use portcullis::convert::strict::{self, Shape};
use serde_json::{json, Value};

#[path = "gojson/doors.rs"]
mod doors;
#[path = "gojson/mutate.rs"]
mod mutate;

#[path = "common/go.rs"]
mod go;
#[path = "common/prereq.rs"]
mod prereq;

/// Real specs, copied from the shared capture (see tests/fixtures/gojson/README.md).
const FIXTURES: [&str; 4] = [
    "podman-privileged.config.json",
    "podman-annot.config.json",
    "docker-resources.config.json",
    "ctr-privileged.config.json",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gojson")
        .join(name)
}

/// The oracle binary, built once per test binary run.
fn oracle() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| go::build("gojson-oracle", &fixture("main.go"), &["runtime-spec-go"]))
}

/// What Go makes of each document: `Ok(json.Marshal of the result)` or `Err(the error)`.
fn go_reads(docs: &[(Shape, Vec<u8>)]) -> Vec<Result<String, String>> {
    let mut input = Vec::new();
    for (shape, doc) in docs {
        let mode = match shape {
            Shape::Spec => "spec",
            Shape::Process => "process",
            Shape::Resources => "resources",
        };
        input.extend_from_slice(format!("{mode} {}\n", doc.len()).as_bytes());
        input.extend_from_slice(doc);
        input.push(b'\n');
    }
    let mut child = Command::new(oracle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running the Go oracle: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    // Written from a thread: the oracle's answers could fill the stdout pipe meanwhile.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "the Go oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Result<String, String>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match l.split_once(' ') {
            Some(("ok", json)) => Ok(json.to_owned()),
            Some(("err", msg)) => Err(serde_json::from_str::<String>(msg).unwrap()),
            _ => panic!("the Go oracle printed {l:?}"),
        })
        .collect();
    assert_eq!(lines.len(), docs.len(), "one answer per document");
    lines
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A known attack (or what Go reads differently): the strict parser must refuse it.
    Refused,
    /// Valid, or odd but read the same by both: the strict parser must accept it.
    Admitted,
}
use Expect::{Admitted, Refused};

struct Doc {
    name: String,
    shape: Shape,
    expect: Expect,
    bytes: Vec<u8>,
}

fn doc(name: &str, shape: Shape, expect: Expect, bytes: impl Into<Vec<u8>>) -> Doc {
    Doc {
        name: name.to_owned(),
        shape,
        expect,
        bytes: bytes.into(),
    }
}

const ALL_CAPS: &str = r#"["CAP_SYS_ADMIN","CAP_SYS_MODULE","CAP_SYS_PTRACE","CAP_NET_ADMIN","CAP_DAC_READ_SEARCH","CAP_SYS_RAWIO"]"#;

/// A benign spec with `extra` spliced in as further top-level members.
fn spec_with(extra: &str) -> String {
    format!(
        r#"{{"ociVersion":"1.0.2","process":{{"user":{{"uid":1000,"gid":1000}},"args":["sh"],"cwd":"/","capabilities":{{"bounding":["CAP_CHOWN"]}}}},"root":{{"path":"rootfs","readonly":true}},"linux":{{"namespaces":[{{"type":"pid"}},{{"type":"mount"}}],"seccomp":{{"defaultAction":"SCMP_ACT_ERRNO"}},"maskedPaths":["/proc/kcore"]}}{extra}}}"#
    )
}

/// The attacks of the issue and their relatives: Go merges what serde_json drops.
fn attacks() -> Vec<Doc> {
    let caps =
        format!(r#"{{"bounding":{ALL_CAPS},"effective":{ALL_CAPS},"permitted":{ALL_CAPS}}}"#);
    let root_all = format!(r#"{{"user":{{"uid":0}},"capabilities":{caps}}}"#);
    let spec = |name: &str, extra: &str| doc(name, Shape::Spec, Refused, spec_with(extra));
    let proc_ = |name: &str, text: &str| doc(name, Shape::Process, Refused, text);
    vec![
        doc(
            "update: Memory after memory",
            Shape::Resources,
            Refused,
            r#"{"memory":{"limit":67108864},"Memory":{"limit":8589934592}}"#,
        ),
        doc(
            "update: limit twice",
            Shape::Resources,
            Refused,
            r#"{"memory":{"limit":67108864,"LIMIT":8589934592}}"#,
        ),
        spec("PROCESS after process", &format!(r#","PROCESS":{root_all}"#)),
        spec("process twice", &format!(r#","process":{root_all}"#)),
        spec("pRoCeSs", &format!(r#","pRoCeSs":{root_all}"#)),
        spec("Process", &format!(r#","Process":{root_all}"#)),
        spec("long s, UTF-8", &format!(",\"proce\u{17F}\u{17F}\":{root_all}")),
        spec("long s, escaped", &format!(r#","proce\u017fs":{root_all}"#)),
        doc(
            "capabilities with a long s",
            Shape::Spec,
            Refused,
            format!(
                "{{\"process\":{{\"capabilities\":{{\"bounding\":[]}},\"capabilitie\u{17F}\":{caps}}}}}"
            ),
        ),
        doc(
            "maskedPaths with a Kelvin sign",
            Shape::Spec,
            Refused,
            "{\"linux\":{\"maskedPaths\":[\"/proc/kcore\"],\"mas\u{212A}edPaths\":[]}}",
        ),
        doc(
            "Namespaces after namespaces",
            Shape::Spec,
            Refused,
            r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"network"}],"Namespaces":[]}}"#,
        ),
        doc(
            "Seccomp null after seccomp",
            Shape::Spec,
            Refused,
            r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"},"Seccomp":null}}"#,
        ),
        doc(
            "long-s seccomp null",
            Shape::Spec,
            Refused,
            "{\"linux\":{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ERRNO\"},\"\u{17F}eccomp\":null}}",
        ),
        spec(
            "Mounts after mounts",
            r#","mounts":[],"Mounts":[{"destination":"/host","type":"bind","source":"/","options":["rbind","rw"]}]"#,
        ),
        spec(
            "options twice in a mount",
            r#","mounts":[{"destination":"/x","type":"bind","source":"/tmp","options":["ro"],"OPTIONS":["rw"]}]"#,
        ),
        doc(
            "user twice in process",
            Shape::Spec,
            Refused,
            r#"{"process":{"user":{"uid":1000},"args":["sh"],"cwd":"/","USER":{"uid":0}}}"#,
        ),
        spec("Root after root", r#","Root":{"readonly":false}"#),
        spec(
            "Linux after linux",
            r#","Linux":{"namespaces":[],"seccomp":null}"#,
        ),
        doc(
            "device allow twice",
            Shape::Spec,
            Refused,
            r#"{"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"},{"allow":false,"Allow":true,"access":"rwm"}]}}}"#,
        ),
        spec(
            "Prestart after prestart",
            r#","hooks":{"prestart":[],"Prestart":[{"path":"/tmp/evil"}]}"#,
        ),
        spec(
            "annotation twice",
            r#","annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-type":"sandbox"}"#,
        ),
        doc(
            "negative zero",
            Shape::Spec,
            Refused,
            r#"{"process":{"oomScoreAdj":-0}}"#,
        ),
        proc_(
            "exec: User after user",
            r#"{"args":["sh"],"cwd":"/","user":{"uid":1000},"User":{"uid":0}}"#,
        ),
        proc_(
            "exec: CAPABILITIES after capabilities",
            &format!(
                r#"{{"args":["sh"],"cwd":"/","capabilities":{{"bounding":[]}},"CAPABILITIES":{caps}}}"#
            ),
        ),
        proc_(
            "exec: noNewPrivileges twice",
            r#"{"args":["sh"],"cwd":"/","noNewPrivileges":true,"noNewPrivileges":false}"#,
        ),
        proc_(
            "exec: ApparmorProfile after apparmorProfile",
            r#"{"args":["sh"],"cwd":"/","apparmorProfile":"runtime/default","ApparmorProfile":"unconfined"}"#,
        ),
        // Go substitutes U+FFFD where serde_json refuses.
        doc("invalid UTF-8", Shape::Spec, Refused, &b"{\"hostname\":\"a\xffb\"}"[..]),
        doc("lone surrogate", Shape::Spec, Refused, r#"{"hostname":"a\ud800b"}"#),
        doc(
            "unpaired low surrogate",
            Shape::Spec,
            Refused,
            r#"{"hostname":"\udc00"}"#,
        ),
    ]
}

/// Valid specs, and odd documents both decoders read alike: these must be admitted.
fn admitted() -> Vec<Doc> {
    let mut docs: Vec<Doc> = FIXTURES
        .iter()
        .map(|f| {
            let bytes = std::fs::read(fixture(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            doc(f, Shape::Spec, Admitted, bytes)
        })
        .collect();
    let spec = |name: &str, extra: &str| doc(name, Shape::Spec, Admitted, spec_with(extra));
    docs.extend([
        spec("benign", ""),
        // A lone misspelt key means the same to Go whether we keep it or not (the schema
        // check refuses it; this parser only refuses duplicates).
        doc(
            "a lone PROCESS",
            Shape::Spec,
            Admitted,
            r#"{"PROCESS":{"user":{"uid":0},"args":["sh"]}}"#,
        ),
        doc(
            "a lone escaped proce\\u017fs",
            Shape::Spec,
            Admitted,
            r#"{"proce\u017fs":{"user":{"uid":0}}}"#,
        ),
        doc(
            "a lone Seccomp null",
            Shape::Spec,
            Admitted,
            r#"{"linux":{"Seccomp":null}}"#,
        ),
        doc("null members", Shape::Spec, Admitted, r#"{"process":null,"linux":{"seccomp":null,"namespaces":null}}"#),
        spec(
            "annotations differing in case",
            ",\"annotations\":{\"a\":\"1\",\"A\":\"2\",\"\u{17F}\":\"3\",\"s\":\"4\",\"\u{212A}\":\"5\",\"k\":\"6\"}",
        ),
        doc(
            "sysctl, unified and rdma differing in case",
            Shape::Spec,
            Admitted,
            r#"{"linux":{"sysctl":{"net.ipv4.ip_forward":"1","NET.IPV4.IP_FORWARD":"0"},"resources":{"unified":{"memory.max":"1","Memory.Max":"2"},"rdma":{"mlx5_0":{"hcaHandles":1},"MLX5_0":{"hcaObjects":2}}}}}"#,
        ),
        doc(
            "credentialSpec differing in case",
            Shape::Spec,
            Admitted,
            r#"{"windows":{"layerFolders":["c:\\l"],"credentialSpec":{"a":1,"A":{"b":[{"c":true,"C":false}]}}}}"#,
        ),
        doc(
            "unknown keys, non-ASCII letters Go does not fold",
            Shape::Spec,
            Admitted,
            "{\"\u{e9}\":1,\"\u{c9}\":2,\"proce\u{df}\":{\"user\":{\"uid\":0}},\"\u{130}d\":1,\"id\":2}",
        ),
        doc(
            "numbers at the edges",
            Shape::Spec,
            Admitted,
            r#"{"process":{"user":{"uid":4294967295,"gid":0},"oomScoreAdj":-1000},"linux":{"resources":{"memory":{"limit":9223372036854775807,"swap":-1},"cpu":{"quota":-9223372036854775808,"period":18446744073709551615}}}}"#,
        ),
        // Go refuses every one of these for an integer field, raw or as we re-encode it.
        doc("a fraction for uid", Shape::Spec, Admitted, r#"{"process":{"user":{"uid":1.0}}}"#),
        doc("an exponent for uid", Shape::Spec, Admitted, r#"{"process":{"user":{"uid":1e2}}}"#),
        doc("0.0 for uid", Shape::Spec, Admitted, r#"{"process":{"user":{"uid":0.0}}}"#),
        doc(
            "beyond 64 bits",
            Shape::Spec,
            Admitted,
            r#"{"linux":{"resources":{"memory":{"limit":18446744073709551616,"swap":-9223372036854775809}}}}"#,
        ),
        doc("a string for uid", Shape::Spec, Admitted, r#"{"process":{"user":{"uid":"0"}}}"#),
        doc(
            "escapes",
            Shape::Spec,
            Admitted,
            r#"{"hostname":"a\"b\\c\/d\b\f\n\r\t\u0000\u00e9\ud83d\ude00","annotations":{"\u2028":"\u2029"}}"#,
        ),
        doc(
            "same key in sibling objects",
            Shape::Spec,
            Admitted,
            r#"{"mounts":[{"destination":"/a","type":"bind"},{"destination":"/b","type":"bind"}]}"#,
        ),
        doc("an empty object", Shape::Spec, Admitted, "{}"),
        doc("top-level null", Shape::Spec, Admitted, "null"),
        doc("an array", Shape::Spec, Admitted, "[1]"),
        doc(
            "exec: a plain process",
            Shape::Process,
            Admitted,
            r#"{"args":["sh","-c","id"],"env":["PATH=/bin","path=/x"],"cwd":"/","user":{"uid":1000,"gid":1000,"additionalGids":[1,2]},"capabilities":{"bounding":["CAP_CHOWN"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024},{"type":"RLIMIT_NPROC","hard":1,"soft":1}],"noNewPrivileges":true}"#,
        ),
        doc("exec: a lone User", Shape::Process, Admitted, r#"{"User":{"uid":0}}"#),
        doc(
            "update: plain resources",
            Shape::Resources,
            Admitted,
            r#"{"memory":{"limit":67108864},"cpu":{"quota":50000,"period":100000},"unified":{"memory.high":"1","MEMORY.HIGH":"2"}}"#,
        ),
    ]);
    // Deep nesting in a field Go ignores, and in one it decodes.
    let deep = format!(r#"{{"x":{}1{}}}"#, "[".repeat(100), "]".repeat(100));
    docs.push(doc("deep unknown field", Shape::Spec, Admitted, deep));
    let deep = format!(
        r#"{{"windows":{{"credentialSpec":{}1{}}}}}"#,
        r#"{"a":"#.repeat(100),
        "}".repeat(100)
    );
    docs.push(doc("deep credentialSpec", Shape::Spec, Admitted, deep));
    docs
}

#[test]
fn go_reads_what_we_judge() {
    let corpus: Vec<Doc> = attacks().into_iter().chain(admitted()).collect();
    let mut wrong = Vec::new();
    // (document index, raw bytes, our re-encoding) of every document we accept.
    let mut accepted = Vec::new();
    for (i, d) in corpus.iter().enumerate() {
        match (strict::parse(&d.bytes, d.shape), d.expect) {
            (Ok(v), Admitted) => accepted.push((i, serde_json::to_vec(&v).unwrap())),
            (Err(_), Refused) => {}
            (Ok(v), Refused) => wrong.push(format!("{}: admitted as {v}", d.name)),
            (Err(e), Admitted) => wrong.push(format!("{}: refused: {e}", d.name)),
        }
    }
    let batch: Vec<(Shape, Vec<u8>)> = accepted
        .iter()
        .flat_map(|(i, ours)| {
            let d = &corpus[*i];
            [(d.shape, d.bytes.clone()), (d.shape, ours.clone())]
        })
        .collect();
    let answers = go_reads(&batch);
    for ((i, _), pair) in accepted.iter().zip(answers.chunks(2)) {
        let (raw, ours) = (&pair[0], &pair[1]);
        // Both refused: runc runs neither, whatever the messages quote.
        let same = match (raw, ours) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if !same {
            wrong.push(format!(
                "{}: Go reads the bytes as\n  {raw:?}\nbut what we judge as\n  {ours:?}",
                corpus[*i].name
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The fixtures are decoded, not refused by Go: the comparison is of real specs.
    for (i, pair) in accepted.iter().zip(answers.chunks(2)).take(4) {
        assert!(pair[0].is_ok(), "{}: {:?}", corpus[i.0].name, pair[0]);
    }
}

/// The control: for the attacks, Go reads a field as the payload while the exact-key view of
/// plain `serde_json` (what the conversion reads) sees the benign value — the hole this parser
/// closes. `None`: absent (Go omits what it cleared).
#[test]
fn the_attacks_are_real_to_go() {
    let sh = || Some(json!("sh"));
    let admin = || Some(json!("CAP_SYS_ADMIN"));
    let defaction = || Some(json!("SCMP_ACT_ERRNO"));
    #[rustfmt::skip]
    let controls: [(&str, &str, Option<Value>, Option<Value>); 22] = [
        ("PROCESS after process", "/process/user/uid", Some(json!(0)), Some(json!(1000))),
        ("PROCESS after process", "/process/capabilities/bounding/0", admin(), Some(json!("CAP_CHOWN"))),
        ("process twice", "/process/args/0", sh(), None),
        ("pRoCeSs", "/process/user/uid", Some(json!(0)), Some(json!(1000))),
        ("Process", "/process/user/uid", Some(json!(0)), Some(json!(1000))),
        ("long s, UTF-8", "/process/user/uid", Some(json!(0)), Some(json!(1000))),
        ("long s, escaped", "/process/user/uid", Some(json!(0)), Some(json!(1000))),
        ("capabilities with a long s", "/process/capabilities/bounding/0", admin(), None),
        ("maskedPaths with a Kelvin sign", "/linux/maskedPaths/0", None, Some(json!("/proc/kcore"))),
        ("Namespaces after namespaces", "/linux/namespaces/0/type", None, Some(json!("pid"))),
        ("Seccomp null after seccomp", "/linux/seccomp/defaultAction", None, defaction()),
        ("long-s seccomp null", "/linux/seccomp/defaultAction", None, defaction()),
        ("Mounts after mounts", "/mounts/0/source", Some(json!("/")), None),
        ("options twice in a mount", "/mounts/0/options/0", Some(json!("rw")), Some(json!("ro"))),
        ("user twice in process", "/process/user/uid", Some(json!(0)), Some(json!(1000))),
        ("Root after root", "/root/readonly", None, Some(json!(true))),
        ("Linux after linux", "/linux/seccomp/defaultAction", None, defaction()),
        ("device allow twice", "/linux/resources/devices/1/allow", Some(json!(true)), Some(json!(false))),
        ("Prestart after prestart", "/hooks/prestart/0/path", Some(json!("/tmp/evil")), None),
        ("exec: User after user", "/user/uid", Some(json!(0)), Some(json!(1000))),
        ("exec: CAPABILITIES after capabilities", "/capabilities/bounding/0", admin(), None),
        ("exec: ApparmorProfile after apparmorProfile", "/apparmorProfile", Some(json!("unconfined")), Some(json!("runtime/default"))),
    ];
    let attacks = attacks();
    let find = |name: &str| {
        attacks
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no attack named {name:?}"))
    };
    let batch: Vec<(Shape, Vec<u8>)> = controls
        .iter()
        .map(|(name, ..)| (find(name).shape, find(name).bytes.clone()))
        .collect();
    let answers = go_reads(&batch);
    for ((name, pointer, go_sees, serde_sees), answer) in controls.iter().zip(answers) {
        let go: Value =
            serde_json::from_str(&answer.unwrap_or_else(|e| panic!("{name}: {e}"))).unwrap();
        let lenient: Value = serde_json::from_slice(&find(name).bytes).unwrap();
        assert_eq!(
            go.pointer(pointer),
            go_sees.as_ref(),
            "{name}: Go read {go}"
        );
        assert_eq!(
            lenient.pointer(pointer),
            serde_sees.as_ref(),
            "{name}: {lenient}"
        );
    }
    // The issue's example: Go keeps the benign copy's arguments and runs them as root.
    let d = find("PROCESS after process");
    let go: Value =
        serde_json::from_str(go_reads(&[(d.shape, d.bytes.clone())])[0].as_ref().unwrap()).unwrap();
    assert_eq!(go.pointer("/process/args/0"), sh().as_ref(), "{go}");
}

#[test]
fn refusals_name_the_field_and_both_spellings() {
    let e =
        strict::parse_spec(spec_with(r#","PROCESS":{"user":{"uid":0}}"#).as_bytes()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "OCI runtime spec has the key `process` twice (`process`, `PROCESS`): runc matches keys \
         case-insensitively and would merge the two; send each field once"
    );
    let e = strict::parse_process(br#"{"user":{"uid":1},"User":{"uid":0}}"#).unwrap_err();
    assert!(matches!(e, ConvertError::DuplicateKey { ref field, .. } if field == "process.user"));
}
