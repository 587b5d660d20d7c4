use super::*;
use serde_json::json;

fn container(labels: &[(&str, &str)], image: &str) -> Container {
    Container {
        id: "c".into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        image: image.into(),
        ..Default::default()
    }
}

#[test]
fn every_mutated_field_is_named_for_the_mask_and_fixed_ones_refused() {
    let before = container(&[("a", "1")], "busybox");
    let mut after = before.clone();
    after.snapshot_key = "other".into();
    after
        .extensions
        .insert("x".into(), prost_types::Any::default());
    after.image = "evil".into();
    assert_eq!(
        mutated_fields(&before, &after).unwrap(),
        ["extensions", "image", "snapshotkey"]
    );
    for change in [
        |c: &mut Container| c.id = "other".into(),
        |c: &mut Container| c.snapshotter = "native".into(),
        |c: &mut Container| c.sandbox = "s".into(),
        |c: &mut Container| {
            c.runtime = Some(containerd_client::services::v1::container::Runtime {
                name: "io.containerd.kata.v2".into(),
                options: None,
            })
        },
    ] {
        let mut after = before.clone();
        change(&mut after);
        let e = mutated_fields(&before, &after).unwrap_err();
        assert!(e.message.contains("cannot change it"), "{}", e.message);
    }
}

#[test]
fn update_mask_follows_containerd() {
    let current = container(&[("a", "1"), ("b", "2")], "old");
    let update = container(&[("a", "9")], "new");
    let all = apply_update_mask(&current, &update, &[]).unwrap();
    assert_eq!((all.labels.len(), all.image.as_str()), (1, "new"));
    let one = apply_update_mask(&current, &update, &["labels.a".into()]).unwrap();
    assert_eq!(
        (
            one.labels["a"].as_str(),
            one.labels["b"].as_str(),
            one.image.as_str()
        ),
        ("9", "2", "old")
    );
    let removed = apply_update_mask(&current, &update, &["labels.b".into()]).unwrap();
    assert!(!removed.labels.contains_key("b"));
    assert!(apply_update_mask(&current, &update, &["runtime".into()]).is_err());
}

#[test]
fn mutations_of_unwritable_calls_are_refused_with_the_field() {
    let before = json!({"command": ["sh"]});
    assert!(matches!(
        unchanged_only("Tasks/Exec", &before, None),
        Ok(Admitted::Unchanged)
    ));
    assert!(matches!(
        unchanged_only("Tasks/Exec", &before, Some(&before)),
        Ok(Admitted::Unchanged)
    ));
    let err = unchanged_only("Tasks/Exec", &before, Some(&json!({"command": ["id"]}))).unwrap_err();
    assert!(
        err.message.contains("/command/0") && err.message.contains("Tasks/Exec"),
        "{}",
        err.message
    );
}

#[test]
fn a_privileged_refusal_names_the_first_reasons_and_how_many_more() {
    let key = "portcullis.dev/privileged-reasons";
    let many: Vec<String> = (0..95).map(|i| format!("`linux.devices[{i}]`")).collect();
    let why = serde_json::to_string(&many).unwrap();
    let shown = super::first_reasons(&why, key);
    assert!(
        shown
            .starts_with("`linux.devices[0]`; `linux.devices[1]`; `linux.devices[2]`; and 92 more"),
        "{shown}"
    );
    assert!(shown.ends_with(key), "{shown}");
    let two = serde_json::to_string(&["a hook", "a device"]).unwrap();
    assert_eq!(super::first_reasons(&two, key), "a hook; a device");
}
