//! The proxy against the direct socket, in one run, on a private containerd:
//! passthrough unary latency, Content/Read streaming throughput, and Containers/Create
//! latency with no webhook and with a local webhook; and the latency of the one upstream read
//! (`Snapshots/Mounts`) the proxy adds to `Tasks/Create`.
//!
//!     cargo bench --bench proxy            (as root; figures go to BENCHMARKS.md)
//!
//! Env: BENCH_CALLS (unary calls per side, default 20000), BENCH_BLOB_MIB (default 512),
//! BENCH_CREATES (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

/// What the bench needs on the machine, checked by the harness (tests/common/prereq.rs);
/// socat, the relay floor, is optional.
const PREREQUISITES: &[&str] = &["root", "containerd", "ctr", "runc"];

use std::path::Path;
use std::time::{Duration, Instant};

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::services::v1::{
    Container, CreateContainerRequest, DeleteContainerRequest, ReadContentRequest,
};
use containerd_client::tonic::transport::Channel;
use containerd_client::tonic::Request;
use sha2::Digest;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn with_ns<T>(msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("containerd-namespace", "bench".parse().unwrap());
    req
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Unary latency on each channel, interleaved in batches so drift hits all alike.
async fn unary(channels: &[Channel], calls: usize) -> Vec<Stats> {
    let mut clients: Vec<_> = channels.iter().cloned().map(VersionClient::new).collect();
    for c in &mut clients {
        for _ in 0..500 {
            c.version(()).await.unwrap();
        }
    }
    let mut samples = vec![Vec::with_capacity(calls); clients.len()];
    for _ in 0..calls / 100 {
        for (c, s) in clients.iter_mut().zip(&mut samples) {
            for _ in 0..100 {
                let t = Instant::now();
                c.version(()).await.unwrap();
                s.push(t.elapsed());
            }
        }
    }
    samples.into_iter().map(stats).collect()
}

/// Bytes per second reading one blob through Content/Read.
async fn read_blob(channel: Channel, digest: &str, size: u64) -> f64 {
    let mut client = ContentClient::new(channel);
    let t = Instant::now();
    let mut stream = client
        .read(with_ns(ReadContentRequest {
            digest: digest.into(),
            offset: 0,
            size: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut total = 0u64;
    while let Some(chunk) = stream.message().await.unwrap() {
        total += chunk.data.len() as u64;
    }
    assert_eq!(total, size);
    size as f64 / t.elapsed().as_secs_f64()
}

async fn creates(channel: Channel, n: usize, tag: &str) -> Stats {
    let mut client = ContainersClient::new(channel);
    let spec = br#"{"ociVersion":"1.0.2","process":{"args":["true"],"cwd":"/","user":{"uid":0,"gid":0}},"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]}}"#;
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let id = format!("{tag}-{i}");
        let container = Container {
            id: id.clone(),
            image: common::IMAGE.into(),
            runtime: Some(Runtime {
                name: "io.containerd.runc.v2".into(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: spec.to_vec(),
            }),
            ..Default::default()
        };
        let t = Instant::now();
        client
            .create(with_ns(CreateContainerRequest {
                container: Some(container),
            }))
            .await
            .unwrap();
        samples.push(t.elapsed());
        client
            .delete(with_ns(DeleteContainerRequest { id }))
            .await
            .unwrap();
    }
    stats(samples)
}

/// Latency of `Snapshots/Mounts` of one snapshot of the default snapshotter.
async fn mounts(channel: Channel, key: &str, n: usize) -> Stats {
    let mut client = SnapshotsClient::new(channel);
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        client
            .mounts(with_ns(MountsRequest {
                snapshotter: "overlayfs".into(),
                key: key.into(),
            }))
            .await
            .unwrap();
        samples.push(t.elapsed());
    }
    stats(samples)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let calls = env("BENCH_CALLS", 20000);
    let blob_mib = env("BENCH_BLOB_MIB", 512);
    let n_creates = env("BENCH_CREATES", 300);
    let dir = tempfile::Builder::new()
        .prefix("portcullis-bench-")
        .tempdir()
        .unwrap();
    let containerd = common::Containerd::start(dir.path());
    let hook = common::WebhookServer::tcp(common::webhook::allow);
    let plain_dir = dir.path().join("plain");
    let hook_dir = dir.path().join("hook");
    std::fs::create_dir_all(&plain_dir).unwrap();
    std::fs::create_dir_all(&hook_dir).unwrap();
    let plain = common::Proxy::start(&plain_dir, &containerd.socket, "");
    let webhook_config = format!(
        "webhooks:\n  - name: bench.allow\n    clientConfig: {{url: \"{}\"}}\n    rules: [{{operations: [CREATE], apiGroups: [\"\"], apiVersions: [v1], resources: [pods]}}]\n",
        hook.url
    );
    let hooked = common::Proxy::start(&hook_dir, &containerd.socket, &webhook_config);
    // The floor any user-space relay pays on this machine: socat copying bytes between the
    // two sockets (no HTTP/2 at all), when socat is installed.
    let socat_socket = dir.path().join("socat.sock");
    let socat = std::process::Command::new("socat")
        .arg(format!("UNIX-LISTEN:{},fork", socat_socket.display()))
        .arg(format!("UNIX-CONNECT:{}", containerd.socket.display()))
        .spawn()
        .ok();
    if socat.is_some() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socat_socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    // A blob of random-ish bytes in the content store.
    let blob = dir.path().join("blob");
    let data: Vec<u8> = (0..blob_mib << 20)
        .map(|i: usize| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&blob, &data).unwrap();
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(&data));
    drop(data);
    let ingest = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ctr --address {} -n bench content ingest --expected-digest {digest} --expected-size {} bench-blob < {}",
            containerd.socket.display(),
            blob_mib << 20,
            blob.display()
        ))
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{}", common::text(&ingest));

    // An active snapshot for the Snapshots/Mounts measurement.
    let snapshot = "bench-snapshot".to_owned();
    let prepared = std::process::Command::new("ctr")
        .arg("--address")
        .arg(&containerd.socket)
        .args(["-n", "bench", "snapshots", "prepare", &snapshot])
        .output()
        .unwrap();
    assert!(prepared.status.success(), "{}", common::text(&prepared));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let connect = |p: &Path| {
            let p = p.to_owned();
            async move { containerd_client::connect(p).await.unwrap() }
        };
        let direct = connect(&containerd.socket).await;
        let proxied = connect(&plain.socket).await;
        let hooked_ch = connect(&hooked.socket).await;

        let floor = match socat.is_some() {
            true => Some(connect(&socat_socket).await),
            false => None,
        };
        let mut channels = vec![direct.clone(), proxied.clone()];
        channels.extend(floor.clone());
        let s = unary(&channels, calls).await;
        let (d, p) = (&s[0], &s[1]);
        println!("unary Version ({calls} calls each): direct p50 {} p99 {}; proxy p50 {} p99 {}; ratio p50 {:.3} p99 {:.3}",
            us(d.p50), us(d.p99), us(p.p50), us(p.p99),
            p.p50.as_secs_f64() / d.p50.as_secs_f64(), p.p99.as_secs_f64() / d.p99.as_secs_f64());
        if let Some(f) = s.get(2) {
            println!("  socat byte relay (floor): p50 {} p99 {}; ratio p50 {:.3}", us(f.p50), us(f.p99), f.p50.as_secs_f64() / d.p50.as_secs_f64());
        }

        let size = (blob_mib << 20) as u64;
        let (mut dr, mut pr, mut fr) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            dr.push(read_blob(direct.clone(), &digest, size).await);
            pr.push(read_blob(proxied.clone(), &digest, size).await);
            if let Some(f) = &floor {
                fr.push(read_blob(f.clone(), &digest, size).await);
            }
        }
        let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max) / (1 << 20) as f64;
        println!("Content/Read {blob_mib} MiB (best of 3): direct {:.0} MiB/s; proxy {:.0} MiB/s; ratio {:.3}",
            best(&dr), best(&pr), best(&pr) / best(&dr));
        if !fr.is_empty() {
            println!("  socat byte relay (floor): {:.0} MiB/s; ratio {:.3}", best(&fr), best(&fr) / best(&dr));
        }

        // What Tasks/Create now adds on the proxy: one upstream Snapshots/Mounts read.
        let m = mounts(direct.clone(), &snapshot, 2000).await;
        println!("Snapshots/Mounts (the read the proxy adds to Tasks/Create), direct: p50 {} p99 {}", us(m.p50), us(m.p99));

        let cd = creates(direct.clone(), n_creates, "d").await;
        let cp = creates(proxied.clone(), n_creates, "p").await;
        let ch = creates(hooked_ch.clone(), n_creates, "h").await;
        println!("Containers/Create ({n_creates} each): direct p50 {} p99 {}; proxy, no webhook p50 {} p99 {}; proxy, local webhook p50 {} p99 {}",
            us(cd.p50), us(cd.p99), us(cp.p50), us(cp.p99), us(ch.p50), us(ch.p99));
    });
    if let Some(mut socat) = socat {
        let _ = socat.kill();
        let _ = socat.wait();
    }
}
