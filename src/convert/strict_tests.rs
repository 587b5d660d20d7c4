//! Unit tests of `strict`: the fold, where keys are compared, error messages, and agreement
//! with `serde_json` on everything it accepts. `tests/gojson.rs` checks against Go itself.

use super::*;
use serde_json::json;

fn refused(text: &str) -> ConvertError {
    parse_spec(text.as_bytes()).expect_err(text)
}

fn dup(field: &str, first: &str, second: &str) -> ConvertError {
    ConvertError::DuplicateKey {
        field: field.into(),
        first: first.into(),
        second: second.into(),
    }
}

/// Go 1.19 `encoding/json/fold.go`, transcribed: `foldFunc(field)(field, key)`, the test Go
/// applies to a key that is not exactly a field name. Field names are ASCII (all of
/// runtime-spec's are), so `bytes.EqualFold` (non-ASCII names) is not needed.
fn go_matches(field: &[u8], key: &[u8]) -> bool {
    const MASK: u8 = !0x20;
    let special = field.iter().any(|b| matches!(b & MASK, b'K' | b'S'));
    let letter = |b: u8| (b & MASK).is_ascii_uppercase();
    if !special {
        // asciiEqualFold and simpleLetterEqualFold: byte for byte, letters up to case.
        return field.len() == key.len()
            && field
                .iter()
                .zip(key)
                .all(|(&s, &t)| s == t || (letter(s) && s & MASK == t & MASK));
    }
    // equalFoldRight: the key may spell `k` as U+212A and `s` as U+017F.
    let mut t = key;
    for &s in field {
        let Some(&tb) = t.first() else { return false };
        if tb < 0x80 {
            if s != tb && !(letter(s) && s & MASK == tb & MASK) {
                return false;
            }
            t = &t[1..];
            continue;
        }
        let (want, len) = match s {
            b's' | b'S' => ("\u{17F}", 2),
            b'k' | b'K' => ("\u{212A}", 3),
            _ => return false,
        };
        if !t.starts_with(want.as_bytes()) {
            return false;
        }
        t = &t[len..];
    }
    t.is_empty()
}

#[test]
fn fold_is_exactly_gos_match() {
    let fields = [
        "process",
        "seccomp",
        "capabilities",
        "maskedPaths",
        "uid",
        "ociVersion",
        "cwd",
        "hostname",
        "rootfsPropagation",
        "io.k",
        "a_b",
        "",
    ];
    let mut keys: Vec<String> = Vec::new();
    for f in fields {
        keys.push(f.to_owned());
        keys.push(f.to_ascii_uppercase());
        keys.push(f.replace('s', "\u{17F}").replace('k', "\u{212A}"));
        keys.push(f.replace('S', "\u{17F}").replace('K', "\u{212A}"));
        keys.push(f.replace('k', "\u{212A}").to_ascii_uppercase());
        keys.push(f.replace('s', "ß"));
        keys.push(f.replace('i', "\u{130}"));
        keys.push(f.replace('i', "\u{131}"));
        keys.push(f.replace('_', "-"));
        keys.push(format!("{f} "));
    }
    // Case-insensitive relatives of `@`/`` ` `` and `[`/`{` differ by bit 0x20 too, but are
    // not letters: Go compares them exactly.
    keys.extend(["@", "`", "[", "{", "A_B", "a-b", "A\u{7F}"].map(String::from));
    for f in fields {
        for k in &keys {
            assert_eq!(
                fold(k) == fold(f),
                go_matches(f.as_bytes(), k.as_bytes()),
                "field {f:?} key {k:?}"
            );
        }
    }
}

#[test]
fn attack_documents_are_refused_with_the_field_and_both_spellings() {
    let e = refused(
        r#"{"process":{"user":{"uid":1000}},"PROCESS":{"user":{"uid":0},"capabilities":{"bounding":["CAP_SYS_ADMIN"]}}}"#,
    );
    assert_eq!(e, dup("process", "process", "PROCESS"));
    let text = e.to_string();
    assert!(
        text.starts_with(
            "OCI runtime spec has the key `process` twice (`process`, `PROCESS`): runc"
        ),
        "{text}"
    );
    assert!(text.contains("send each field once"), "{text}");
    assert_eq!(
        refused(r#"{"process":{},"process":{}}"#),
        dup("process", "process", "process")
    );
    assert_eq!(
        refused(r#"{"linux":{"namespaces":[],"Namespaces":[{"type":"pid"}]}}"#),
        dup("linux.namespaces", "namespaces", "Namespaces")
    );
    assert_eq!(
        refused(r#"{"linux":{"seccomp":{"defaultAction":"SCMP_ACT_ERRNO"},"Seccomp":null}}"#),
        dup("linux.seccomp", "seccomp", "Seccomp")
    );
    assert_eq!(
        refused(r#"{"mounts":[],"Mounts":[{"destination":"/","source":"/"}]}"#),
        dup("mounts", "mounts", "Mounts")
    );
    // The two non-ASCII runes Go folds into ASCII letters.
    assert_eq!(
        refused("{\"linux\":{\"seccomp\":{},\"\u{17F}eccomp\":null}}"),
        dup("linux.seccomp", "seccomp", "\u{17F}eccomp")
    );
    assert_eq!(
        refused("{\"linux\":{\"masKedPaths\":[],\"mas\u{212A}edPaths\":[]}}"),
        dup("linux.masKedPaths", "masKedPaths", "mas\u{212A}edPaths")
    );
}

#[test]
fn nested_objects_and_arrays_of_objects_are_checked() {
    assert_eq!(
        refused(r#"{"process":{"user":{"uid":1},"USER":{"uid":0}}}"#),
        dup("process.user", "user", "USER")
    );
    assert_eq!(
        refused(r#"{"mounts":[{"type":"bind"},{"type":"bind","TYPE":"proc"}]}"#),
        dup("mounts[1].type", "type", "TYPE")
    );
    assert_eq!(
        refused(r#"{"hooks":{"prestart":[{"path":"/a"},{"path":"/b","Path":"/c"}]}}"#),
        dup("hooks.prestart[1].path", "path", "Path")
    );
    assert_eq!(refused(r#"[[{"a":1,"A":2}]]"#), dup("[0][0].a", "a", "A"));
    // The path keeps the spelling of each ancestor as sent.
    assert_eq!(
        refused(r#"{"Process":{"Capabilities":{"bounding":[],"Bounding":["CAP_SYS_ADMIN"]}}}"#),
        dup("Process.Capabilities.bounding", "bounding", "Bounding")
    );
    // The same key in sibling objects is no duplicate.
    let v = parse_spec(br#"{"mounts":[{"type":"a"},{"type":"b"}],"process":{"user":{}}}"#);
    assert!(v.is_ok(), "{v:?}");
}

#[test]
fn go_maps_compare_keys_exactly() {
    // Two annotations to Go as to serde_json: admitted, both kept.
    let v = parse_spec(br#"{"annotations":{"a":"1","A":"2","\u017f":"3","s":"4"}}"#).unwrap();
    assert_eq!(
        v,
        json!({"annotations": {"a": "1", "A": "2", "ſ": "3", "s": "4"}})
    );
    // An exact repeat is still refused, named as a map entry.
    let e = refused(r#"{"annotations":{"io.example/x":"1","io.example/x":"2"}}"#);
    assert_eq!(
        e,
        dup(
            r#"annotations["io.example/x"]"#,
            "io.example/x",
            "io.example/x"
        )
    );
    // The map is found by Go's fold of its field name too.
    assert!(parse_spec(br#"{"ANNOTATIONS":{"a":"1","A":"2"}}"#).is_ok());
    for text in [
        r#"{"linux":{"sysctl":{"net.a":"1","NET.A":"0"}}}"#,
        r#"{"linux":{"resources":{"unified":{"memory.max":"1","MEMORY.MAX":"2"}}}}"#,
        r#"{"linux":{"netDevices":{"eth0":{},"ETH0":{}}}}"#,
        r#"{"windows":{"credentialSpec":{"a":{"b":[{"c":1,"C":2}]},"A":1}}}"#,
    ] {
        assert!(parse_spec(text.as_bytes()).is_ok(), "{text}");
    }
    // The values of `rdma` are structs again.
    assert_eq!(
        refused(r#"{"linux":{"resources":{"rdma":{"mlx":{"hcaHandles":1,"HcaHandles":9}}}}}"#),
        dup(
            r#"linux.resources.rdma["mlx"].hcaHandles"#,
            "hcaHandles",
            "HcaHandles"
        )
    );
    // `annotations` of a process is not a map: a Process has none.
    assert!(parse_process(br#"{"annotations":{"a":1,"A":2}}"#).is_err());
    // Other non-ASCII letters match no field: Go keeps `é` and `É` apart, so do we.
    assert!(parse_spec("{\"\u{e9}\":1,\"\u{c9}\":2}".as_bytes()).is_ok());
}

#[test]
fn process_fields_are_named_under_process() {
    let e = parse_process(br#"{"args":["sh"],"user":{"uid":1000},"User":{"uid":0}}"#).unwrap_err();
    assert_eq!(e, dup("process.user", "user", "User"));
    assert_eq!(
        parse_process(br#"{"env":[],"ENV":[]}"#).unwrap_err(),
        dup("process.env", "env", "ENV")
    );
    assert!(parse_process(br#"{"args":["sh"],"user":{"uid":0}}"#).is_ok());
}

#[test]
fn negative_zero_is_refused_other_numbers_kept() {
    assert_eq!(
        refused(r#"{"process":{"oomScoreAdj":-0}}"#),
        ConvertError::NegativeZero {
            field: "process.oomScoreAdj".into()
        }
    );
    assert!(refused(r#"{"a":[1,-0.0]}"#).to_string().contains("`a[1]`"));
    let v = parse_spec(br#"{"a":0,"b":-1,"c":18446744073709551615,"d":1.5,"e":1e2}"#).unwrap();
    assert_eq!(
        v,
        json!({"a": 0, "b": -1, "c": u64::MAX, "d": 1.5, "e": 100.0})
    );
}

#[test]
fn what_serde_json_refuses_is_not_json() {
    for bad in [
        &b"{\"a\":\"\\ud800\"}"[..],
        b"{\"a\":\"\\udc00x\"}",
        b"{\"a\":\"\xff\"}",
        b"{\"a\":1} {}",
        b"{\"a\":1,}",
        b"",
        b"\xef\xbb\xbf{}",
    ] {
        match parse_spec(bad) {
            Err(ConvertError::NotJson(m)) => assert!(!m.is_empty()),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bad)),
        }
    }
    let e = parse_spec(b"{\"a\":").unwrap_err().to_string();
    assert!(
        e.starts_with("the OCI runtime spec is not valid JSON: "),
        "{e}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(parse_spec(ok.as_bytes()).is_ok());
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let deep = format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
        assert!(matches!(
            parse_spec(deep.as_bytes()),
            Err(ConvertError::NotJson(_))
        ));
    }
    // A duplicate found deep down names the whole path.
    let text = format!(
        r#"{}{{"x":1,"X":2}}{}"#,
        r#"{"a":"#.repeat(5),
        "}".repeat(5)
    );
    assert_eq!(refused(&text), dup("a.a.a.a.a.x", "x", "X"));
}

#[test]
fn accepted_documents_equal_serde_json() {
    for text in [
        &include_bytes!("../../tests/fixtures/gojson/podman-privileged.config.json")[..],
        include_bytes!("../../tests/fixtures/gojson/podman-annot.config.json"),
        include_bytes!("../../tests/fixtures/gojson/docker-resources.config.json"),
        include_bytes!("../../tests/fixtures/gojson/ctr-privileged.config.json"),
        br#"{"a":[null,true,false,"\u00e9\ud83d\ude00",{"b":{}}],"c":-9223372036854775808}"#,
        b" null ",
        b"[]",
    ] {
        let ours = parse_spec(text).unwrap();
        assert_eq!(ours, serde_json::from_slice::<Value>(text).unwrap());
    }
}
