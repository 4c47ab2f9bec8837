//! The moto EC2 emulator for the EC2 tests: found, started on a loopback port (retried on a port
//! race), killed on drop with its log printed when a test fails; an SDK client for it and a
//! helper that launches tagged instances. Its instances get fake 10.x/54.x addresses that the
//! tests never contact.

use super::ChildGuard;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::config::{Credentials, Region};
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The region every EC2 test uses.
pub const REGION: &str = "eu-west-1";

/// Never let the SDK probe the instance-metadata address; call before any SDK client exists.
pub fn disable_instance_metadata() {
    // SAFETY: every EC2 test sets the same value before creating SDK clients.
    unsafe { std::env::set_var("AWS_EC2_METADATA_DISABLED", "true") };
}

/// `moto_server`: `$PROMFED_MOTO_SERVER`, else the virtualenv tests/run-all.sh installs, else
/// `PATH`. `None` (with a notice) when missing; a failure when `CI` is set.
pub fn moto_binary() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("PROMFED_MOTO_SERVER") {
        Some(p) => vec![PathBuf::from(p)],
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/promfed/venv/bin/moto_server"))
            .into_iter()
            .chain(
                std::env::var_os("PATH")
                    .map(|paths| std::env::split_paths(&paths).map(|p| p.join("moto_server")).collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .collect(),
    };
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "CI is set but moto_server is not installed (tests/run-all.sh installs it): this test must run in CI"
            );
        }
        eprintln!("SKIPPED: moto_server not found (tests/run-all.sh installs it); with CI set this fails");
    }
    found
}

/// The emulator on a loopback port, killed on drop; its log is printed when the test fails.
pub struct Moto {
    pub endpoint: String,
    child: Option<ChildGuard>,
    // After `child`: the process is gone before its directory is removed.
    dir: tempfile::TempDir,
}

impl Moto {
    pub async fn start(binary: &Path) -> Moto {
        let dir = tempfile::Builder::new().prefix("promfed-e2e-moto-").tempdir().expect("temp dir");
        let mut moto = Moto { endpoint: String::new(), child: None, dir };
        for attempt in 1..=3 {
            let port = super::free_port();
            let log = std::fs::File::create(moto.dir.path().join("moto.log")).expect("moto log");
            let child = Command::new(binary)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            moto.child = Some(ChildGuard::new(child));
            moto.endpoint = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            // At most 30s / 100ms connection attempts.
            for _ in 0..300 {
                if moto.child.as_mut().is_some_and(ChildGuard::exited) || Instant::now() > deadline {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    eprintln!("moto_server listening on {}", moto.endpoint);
                    return moto;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            eprintln!("moto_server did not listen on port {port} (attempt {attempt}):\n{}", moto.log_tail(10));
            moto.child = None;
        }
        panic!("moto_server did not start");
    }

    /// Stops the emulator (to test an API outage).
    pub fn stop(&mut self) {
        self.child = None;
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- last lines of moto_server's log ---\n{}\n---", self.log_tail(15));
        }
    }
}

/// An SDK client of the emulator (static credentials; no metadata or profile lookups).
pub fn ec2_client(endpoint: &str) -> Client {
    let conf = aws_sdk_ec2::Config::builder()
        .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(conf)
}

/// Launches `count` instances (one reservation) with these tags; returns their ids.
pub async fn launch_tagged(ec2: &Client, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
    let images = ec2.describe_images().send().await.expect("DescribeImages");
    let ami = images.images().first().and_then(|i| i.image_id()).expect("the emulator has an AMI").to_owned();
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = ec2
        .run_instances()
        .image_id(ami)
        .instance_type(InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("RunInstances");
    out.instances().iter().map(|i| i.instance_id().expect("instance id").to_owned()).collect()
}
