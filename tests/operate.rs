//! Operating the proxy end to end: the Prometheus endpoint, the decision cache and hot
//! reload of the config file, with a private containerd and the real `ctr`.

mod common;

/// What these tests need on the machine, checked once by the harness (tests/common/prereq.rs).
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc", "busybox"];

use std::time::{Duration, Instant};

use common::{free_port, http, ok, text, unique, World, IMAGE, IMAGE_LATEST};

/// `GET path`: (head, body).
fn get(port: u16, path: &str) -> (String, String) {
    http(port, "GET", path, b"")
}

/// The value of the sample `line` starts with (`name{labels}`), 0 if absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn wait_until(what: &str, w: &World, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: timed out\n{}", w.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metrics_count_decisions_and_cache_hits_and_the_config_reloads_live() {
    let port = free_port();
    let config = |images: &str| {
        format!("metrics: {{listen: '127.0.0.1:{port}'}}\ncache: {{}}\nimages: {{disallowLatest: true{images}}}\n")
    };
    let w = World::new(&config(""));

    ok(w.ctr(&["run", "--rm", IMAGE, &unique("admitted"), "true"]));
    let latest = unique("latest");
    for _ in 0..2 {
        let out = w.ctr(&["run", "--rm", IMAGE_LATEST, &latest, "true"]);
        assert!(text(&out).contains("uses the tag latest"), "{}", text(&out));
        // ctr prepares the snapshot before it asks for the container and usually leaves
        // it behind; the same id is reused, so it must go (it may already be gone).
        let _ = w.ctr_direct(&["snapshots", "rm", &latest]);
    }

    let (status, metrics) = get(port, "/metrics");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains("application/openmetrics-text"), "{status}");
    // The admitted run is two decisions: Containers/Create, and Tasks/Create re-checking
    // the same stored container, an identical request the cache answers.
    let decisions = |verdict: &str, cached: &str| {
        sample(
            &metrics,
            &format!(
                r#"portcullis_decisions_total{{door="proxy",verdict="{verdict}",cached="{cached}"}}"#
            ),
        )
    };
    assert_eq!(decisions("allowed", "false"), 1.0, "{metrics}");
    assert_eq!(decisions("allowed", "true"), 1.0, "{metrics}");
    assert_eq!(decisions("denied", "false"), 1.0, "{metrics}");
    assert_eq!(decisions("denied", "true"), 1.0, "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            r#"portcullis_policy_results_total{door="proxy",policy="images",outcome="denied"}"#
        ),
        2.0,
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            r#"portcullis_decision_duration_seconds_count{door="proxy"}"#
        ) >= 4.0
    );
    assert_eq!(get(port, "/healthz").1, "ok\n");

    // A new rule in the file takes effect without a restart...
    let stricter = config(", deny: ['*busybox*']");
    std::fs::write(&w.proxy.config, &stricter).unwrap();
    wait_until("the stricter config is loaded", &w, || {
        !w.ctr(&["run", "--rm", IMAGE, &unique("reloaded"), "true"])
            .status
            .success()
    });
    let out = w.ctr(&["run", "--rm", IMAGE, &unique("reloaded"), "true"]);
    assert!(
        text(&out).contains("matches the denied pattern"),
        "{}",
        text(&out)
    );

    // ...and a broken one is rejected: the last good config keeps serving.
    std::fs::write(&w.proxy.config, format!("{stricter}bogusKey: 1\n")).unwrap();
    wait_until("the broken config is rejected", &w, || {
        w.proxy.log().contains("config reload rejected")
    });
    let log = w.proxy.log();
    // Only `images:` changed: --listen and --containerd given on the command line are not
    // taken for a change of the `proxy:` section.
    assert!(!log.contains("takes effect at the next restart"), "{log}");
    assert!(
        log.contains("unknown field") && log.contains("bogusKey"),
        "{log}"
    );
    assert!(!w
        .ctr(&["run", "--rm", IMAGE, &unique("still-denied"), "true"])
        .status
        .success());
    let metrics = get(port, "/metrics").1;
    assert_eq!(
        sample(
            &metrics,
            r#"portcullis_config_reloads_total{result="success"}"#
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"portcullis_config_reloads_total{result="failure"}"#
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "portcullis_config_last_reload_successful"),
        0.0
    );
    assert_eq!(sample(&metrics, "portcullis_config_generation"), 2.0);
}

/// A CEL policy that runs to its time limit (500 ms) is evaluated off the proxy's async
/// worker: while containers wait for it, unrelated calls through the same proxy answer.
/// Before, the evaluation held the proxy's one worker thread and `ctr version` waited.
#[test]
fn a_slow_cel_policy_does_not_stall_other_calls_through_the_proxy() {
    let policies = tempfile::tempdir().unwrap();
    // 150³ CEL steps: far more than the 500 ms time limit allows, in any build.
    let numbers: Vec<String> = (0..150).map(|n| n.to_string()).collect();
    let numbers = numbers.join(", ");
    std::fs::write(
        policies.path().join("slow.yaml"),
        format!(
            r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: slow}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}}]
  variables:
  - name: xs
    expression: "[{numbers}]"
  validations:
  - expression: "variables.xs.all(a, variables.xs.all(b, variables.xs.all(c, a + b + c >= 0)))"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: slow}}
spec: {{policyName: slow, validationActions: [Deny]}}
"#
        ),
    )
    .unwrap();
    let w = World::new(&format!("policyDir: {}\n", policies.path().display()));
    let socket = w.proxy.socket.clone();
    let slow: Vec<_> = (0..3)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let id = unique(&format!("slow-{i}"));
                common::ctr(&socket, &["containers", "create", IMAGE, &id, "true"])
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut calls = 0;
    while !slow.iter().all(|t| t.is_finished()) {
        let started = Instant::now();
        ok(w.ctr(&["version"]));
        slowest = slowest.max(started.elapsed());
        calls += 1;
    }
    for t in slow {
        let out = t.join().unwrap();
        assert!(
            !out.status.success(),
            "the slow policy admitted a container"
        );
        assert!(
            text(&out).contains("exceeded the time limit"),
            "the policy did not run to its limit: {}\n{}",
            text(&out),
            w.logs()
        );
    }
    // Three evaluations of 500 ms each held a worker for 1.5 s; a call that had to wait
    // for them would take at least 500 ms.
    assert!(calls >= 3, "only {calls} calls while the policy ran");
    assert!(
        slowest < Duration::from_millis(400),
        "`ctr version` took {slowest:?} while a slow policy ran"
    );
}
