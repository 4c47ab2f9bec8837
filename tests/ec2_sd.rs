//! EC2 discovery against the moto EC2 emulator (`moto_server`, installed by tests/run-all.sh
//! into a virtualenv). Instances get fake 10.x/54.x addresses that are never contacted: the
//! tests relabel `__address__` to a loopback port taken from a `test-port` tag.
//!
//! When `CI` is set and `moto_server` cannot be found these tests fail; otherwise they print a
//! notice and pass without running.
#![cfg(feature = "ec2")]

mod common;

use aws_sdk_ec2::Client;
use common::moto::{Moto, REGION, disable_instance_metadata, ec2_client, launch_tagged, moto_binary};
use promfed::discovery::ec2::{Ec2SdConfig, describe};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Starts the emulator, or `None` (skip) when it is not installed and `CI` is not set.
async fn start_moto() -> Option<Moto> {
    disable_instance_metadata();
    let bin = moto_binary()?;
    Some(Moto::start(&bin).await)
}

fn client(endpoint: &str) -> Client {
    ec2_client(endpoint)
}

async fn launch(c: &Client, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
    launch_tagged(c, count, tags).await
}

fn sd_config(endpoint: &str, group: &str) -> Ec2SdConfig {
    serde_saphyr::from_str(&format!(
        "{{region: {REGION}, endpoint: '{endpoint}', access_key: testing, secret_key: testing, port: 9090, refresh_interval: 1s, page_size: 5, filters: [{{name: 'tag:federation-group', values: [{group}]}}]}}"
    ))
    .unwrap()
}

#[tokio::test]
async fn describes_running_instances_with_prometheus_labels_across_pages() {
    let Some(moto) = start_moto().await else { return };
    let c = client(&moto.endpoint);
    let primary =
        launch(&c, 1, &[("federation-group", "eu"), ("federation-role", "primary"), ("Name", "prom-a")]).await;
    launch(&c, 1, &[("federation-group", "eu"), ("federation-role", "secondary")]).await;
    launch(&c, 1, &[("federation-group", "us"), ("federation-role", "primary")]).await;
    // 12 instances (12 reservations: EC2 pages by reservation) with a page size of 5: 3 pages.
    let mut many = Vec::new();
    for _ in 0..12 {
        many.extend(launch(&c, 1, &[("federation-group", "many"), ("federation-role", "secondary")]).await);
    }
    let one_page = c.describe_instances().max_results(5).send().await.unwrap();
    assert!(one_page.next_token().is_some(), "the emulator pages, so reading every page is really tested");

    let cfg = sd_config(&moto.endpoint, "eu");
    let targets = describe(&c, &cfg).await.unwrap();
    assert_eq!(targets.len(), 2, "{targets:#?}");
    let a = targets.iter().find(|t| t["__meta_ec2_instance_id"] == primary[0]).unwrap();
    // The answer of DescribeInstances itself, to compare with.
    let d = c.describe_instances().instance_ids(&primary[0]).send().await.unwrap();
    let i = &d.reservations()[0].instances()[0];
    assert_eq!(a["__address__"], format!("{}:9090", i.private_ip_address().unwrap()));
    assert_eq!(a["__meta_ec2_private_ip"], i.private_ip_address().unwrap());
    assert_eq!(a["__meta_ec2_ami"], i.image_id().unwrap());
    assert_eq!(a["__meta_ec2_instance_type"], "t3.micro");
    assert_eq!(a["__meta_ec2_instance_state"], "running");
    assert_eq!(a["__meta_ec2_region"], REGION);
    assert_eq!(a["__meta_ec2_availability_zone"], i.placement().unwrap().availability_zone().unwrap());
    assert_eq!(a["__meta_ec2_vpc_id"], i.vpc_id().unwrap());
    assert_eq!(a["__meta_ec2_primary_subnet_id"], i.subnet_id().unwrap());
    assert_eq!(a["__meta_ec2_subnet_id"], format!(",{},", i.subnet_id().unwrap()));
    assert_eq!(a["__meta_ec2_owner_id"], d.reservations()[0].owner_id().unwrap());
    assert_eq!(a["__meta_ec2_tag_federation_role"], "primary");
    assert_eq!(a["__meta_ec2_tag_federation_group"], "eu");
    assert_eq!(a["__meta_ec2_tag_Name"], "prom-a");
    for k in ["__meta_ec2_architecture", "__meta_ec2_private_dns_name"] {
        assert!(a.contains_key(k), "{k} missing: {a:#?}");
    }
    if let Some(ip) = i.public_ip_address() {
        assert_eq!(a["__meta_ec2_public_ip"], ip);
    }

    let all = describe(&c, &sd_config(&moto.endpoint, "many")).await.unwrap();
    let mut ids: Vec<&str> = all.iter().map(|t| t["__meta_ec2_instance_id"].as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = many.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(ids, want, "every page read");

    // Terminated instances are not targets.
    c.terminate_instances().instance_ids(&primary[0]).send().await.unwrap();
    let left = describe(&c, &cfg).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0]["__meta_ec2_instance_id"], primary[0]);
}

/// Issue 3: the complete label set of one instance, every key and value, as Prometheus' EC2 SD
/// makes it: a Windows (platform) spot (instance_lifecycle) instance in a VPC subnet with IPv6,
/// a public IP (and so a public DNS name), and a second network interface in the same subnet
/// (the subnet is listed once). Values the emulator chose are read from its answers to the
/// calls that created them; an extra or a missing label fails.
#[tokio::test]
async fn one_instance_has_exactly_the_prometheus_label_set() {
    use aws_sdk_ec2::types::{
        Filter, InstanceMarketOptionsRequest, InstanceNetworkInterfaceSpecification, InstanceType, MarketType,
        ResourceType, Tag, TagSpecification,
    };
    let Some(moto) = start_moto().await else { return };
    let c = client(&moto.endpoint);
    let vpc = c.create_vpc().cidr_block("10.9.0.0/16").amazon_provided_ipv6_cidr_block(true).send().await.unwrap();
    let vpc = vpc.vpc().unwrap();
    let v6 = vpc.ipv6_cidr_block_association_set()[0].ipv6_cidr_block().unwrap().replace("/56", "/64");
    let subnet = c
        .create_subnet()
        .vpc_id(vpc.vpc_id().unwrap())
        .cidr_block("10.9.1.0/24")
        .ipv6_cidr_block(v6)
        .availability_zone("eu-west-1b")
        .send()
        .await
        .unwrap();
    let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_owned();
    let windows =
        c.describe_images().filters(Filter::builder().name("platform").values("windows").build()).send().await.unwrap();
    let ami = windows.images()[0].image_id().unwrap().to_owned();
    let tags = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("federation-group").value("full").build())
        .tags(Tag::builder().key("federation-role").value("primary").build())
        .tags(Tag::builder().key("aws:cloudformation:stack-name").value("prom").build())
        .build();
    let run = c
        .run_instances()
        .image_id(&ami)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .instance_market_options(InstanceMarketOptionsRequest::builder().market_type(MarketType::Spot).build())
        .network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&subnet_id)
                .associate_public_ip_address(true)
                .build(),
        )
        .tag_specifications(tags)
        .send()
        .await
        .unwrap();
    let launched = &run.instances()[0];
    let id = launched.instance_id().unwrap().to_owned();
    let eni0 = launched.network_interfaces()[0].network_interface_id().unwrap().to_owned();
    let v6 = c.assign_ipv6_addresses().network_interface_id(&eni0).ipv6_address_count(1).send().await.unwrap();
    let ipv6 = v6.assigned_ipv6_addresses()[0].clone();
    let eni1 = c.create_network_interface().subnet_id(&subnet_id).send().await.unwrap();
    let eni1 = eni1.network_interface().unwrap().network_interface_id().unwrap().to_owned();
    c.attach_network_interface().network_interface_id(eni1).instance_id(&id).device_index(1).send().await.unwrap();

    // What the emulator chose: addresses and the owner.
    let d = c.describe_instances().instance_ids(&id).send().await.unwrap();
    let owner = d.reservations()[0].owner_id().unwrap().to_owned();
    let i = &d.reservations()[0].instances()[0];
    assert_eq!(i.network_interfaces().len(), 2, "two interfaces in one subnet");
    let private_ip = i.private_ip_address().unwrap().to_owned();
    let public_ip = i.public_ip_address().expect("a public IP was asked for").to_owned();
    let want: std::collections::BTreeMap<String, String> = [
        ("__address__", format!("{private_ip}:9090")),
        ("__meta_ec2_ami", ami.clone()),
        ("__meta_ec2_architecture", "x86_64".into()),
        ("__meta_ec2_availability_zone", "eu-west-1b".into()),
        ("__meta_ec2_instance_id", id.clone()),
        ("__meta_ec2_instance_lifecycle", "spot".into()),
        ("__meta_ec2_instance_state", "running".into()),
        ("__meta_ec2_instance_type", "t3.micro".into()),
        ("__meta_ec2_ipv6_addresses", format!(",{ipv6},")),
        ("__meta_ec2_owner_id", owner),
        ("__meta_ec2_platform", "windows".into()),
        ("__meta_ec2_primary_subnet_id", subnet_id.clone()),
        ("__meta_ec2_private_dns_name", format!("ip-{}.{REGION}.compute.internal", private_ip.replace('.', "-"))),
        ("__meta_ec2_private_ip", private_ip.clone()),
        ("__meta_ec2_public_dns_name", format!("ec2-{}.{REGION}.compute.amazonaws.com", public_ip.replace('.', "-"))),
        ("__meta_ec2_public_ip", public_ip.clone()),
        ("__meta_ec2_region", REGION.into()),
        ("__meta_ec2_subnet_id", format!(",{subnet_id},")),
        ("__meta_ec2_tag_aws_cloudformation_stack_name", "prom".into()),
        ("__meta_ec2_tag_federation_group", "full".into()),
        ("__meta_ec2_tag_federation_role", "primary".into()),
        ("__meta_ec2_vpc_id", vpc.vpc_id().unwrap().to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let targets = describe(&c, &sd_config(&moto.endpoint, "full")).await.unwrap();
    assert_eq!(targets.len(), 1, "{targets:#?}");
    assert_eq!(targets[0], want, "the whole label set");
}

async fn fake_replica(name: String) -> SocketAddr {
    common::fake_replica(move |now| format!("up{{job=\"x\",replica=\"{name}\"}} 1 {now}\n")).await
}

async fn status(http: &reqwest::Client, addr: SocketAddr) -> serde_json::Value {
    let v: serde_json::Value =
        http.get(format!("http://{addr}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
    v["data"][0].clone()
}

async fn wait_for(http: &reqwest::Client, addr: SocketAddr, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = status(http, addr).await;
        if ok(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {s:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn last_success(http: &reqwest::Client, addr: SocketAddr) -> Option<f64> {
    let m = http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    common::metric_value(&m, "promfed_sd_last_success_timestamp_seconds", &[("mechanism", "ec2")])
}

fn names(s: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> =
        s["replicas"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn promfed_follows_instances_and_keeps_them_when_the_api_fails() {
    let Some(mut moto) = start_moto().await else { return };
    promfed::serve::install_crypto_provider();
    let c = client(&moto.endpoint);
    let (pa, pb, pc) = (fake_replica("a".into()).await, fake_replica("b".into()).await, fake_replica("c".into()).await);
    let a = launch(
        &c,
        1,
        &[("federation-group", "pair"), ("federation-role", "primary"), ("test-port", &pa.port().to_string())],
    )
    .await;
    let b = launch(
        &c,
        1,
        &[("federation-group", "pair"), ("federation-role", "secondary"), ("test-port", &pb.port().to_string())],
    )
    .await;
    launch(&c, 1, &[("federation-group", "pair"), ("test-port", "1")]).await; // no role: reported

    let yaml = format!(
        r#"
groups:
  - name: pair
    scrape_interval: 300ms
    scrape_timeout: 250ms
    ec2_sd_configs:
      - {{region: {REGION}, endpoint: "{endpoint}", access_key: testing, secret_key: testing, refresh_interval: 1s,
          filters: [{{name: "tag:federation-group", values: [pair]}}]}}
    relabel_configs:
      # Never connect to the emulator's fake addresses: scrape loopback at the tagged port.
      - {{source_labels: [__meta_ec2_tag_test_port], target_label: __address__, replacement: "127.0.0.1:$1"}}
"#,
        endpoint = moto.endpoint
    );
    let config = promfed::config::parse(&yaml, "test").unwrap();
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let addr = running.address;
    let http = reqwest::Client::new();
    let mut want = vec![a[0].clone(), b[0].clone()];
    want.sort();
    wait_for(&http, addr, "both instances as replicas", |s| names(s) == want && s["leader"] == a[0].as_str()).await;
    let s = status(&http, addr).await;
    assert_eq!(s["rejected_targets"].as_array().map(Vec::len), Some(1), "{s:#}");
    let first_success = last_success(&http, addr).await.expect("last-success timestamp set");
    assert!((common::now_secs() - first_success).abs() < 10.0, "a wall-clock time: {first_success}");
    assert!(s["replicas"].as_array().unwrap().iter().all(|r| r["address"].as_str().unwrap().starts_with("127.0.0.1:")));

    // The primary is replaced by a new instance on another port.
    c.terminate_instances().instance_ids(&a[0]).send().await.unwrap();
    let new = launch(
        &c,
        1,
        &[("federation-group", "pair"), ("federation-role", "primary"), ("test-port", &pc.port().to_string())],
    )
    .await;
    let mut want = vec![b[0].clone(), new[0].clone()];
    want.sort();
    wait_for(&http, addr, "the replacement", |s| names(s) == want).await;
    wait_for(&http, addr, "the new primary leading", |s| s["leader"] == new[0].as_str()).await;
    let later_success = last_success(&http, addr).await.unwrap();
    assert!(later_success > first_success, "moves forward: {first_success} then {later_success}");

    // The emulator goes away: the last good set stays and failures are counted.
    moto.stop();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
        if m.lines().any(|l| l.starts_with("promfed_sd_refresh_failures_total{mechanism=\"ec2\"}")) {
            break;
        }
        assert!(Instant::now() < deadline, "no ec2 refresh failure counted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(names(&status(&http, addr).await), want, "last good set kept");
    let stuck = last_success(&http, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(last_success(&http, addr).await, Some(stuck), "no success while the API is down");
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test]
async fn one_ec2_block_yields_a_group_per_federation_group_tag() {
    let Some(moto) = start_moto().await else { return };
    promfed::serve::install_crypto_provider();
    let c = client(&moto.endpoint);
    let mut ports = Vec::new();
    for (group, role) in [("eu", "primary"), ("eu", "secondary"), ("us", "primary"), ("us", "secondary")] {
        let addr = fake_replica(format!("{group}-{role}")).await;
        ports.push(addr.port());
        let port = addr.port().to_string();
        launch(&c, 1, &[("federation-group", group), ("federation-role", role), ("test-port", &port), ("team", "sre")])
            .await;
    }
    launch(&c, 1, &[("team", "other"), ("federation-group", "ignored"), ("federation-role", "primary")]).await;
    let yaml = format!(
        r#"
groups:
  - name: sre-pairs
    discover_groups: true
    scrape_interval: 300ms
    scrape_timeout: 250ms
    labels: {{federation_group: $group}}
    ec2_sd_configs:
      - {{region: {REGION}, endpoint: "{endpoint}", access_key: testing, secret_key: testing, refresh_interval: 1s,
          filters: [{{name: "tag:team", values: [sre]}}]}}
    relabel_configs:
      - {{source_labels: [__meta_ec2_tag_test_port], regex: '.+', action: keep}}
      - {{source_labels: [__meta_ec2_tag_test_port], target_label: __address__, replacement: "127.0.0.1:$1"}}
"#,
        endpoint = moto.endpoint
    );
    let config = promfed::config::parse(&yaml, "test").unwrap();
    let running = promfed::run::start(config, Some(TcpListener::bind("127.0.0.1:0").await.unwrap())).await.unwrap();
    let addr = running.address;
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: serde_json::Value =
            http.get(format!("http://{addr}/api/v1/status/groups")).send().await.unwrap().json().await.unwrap();
        let groups = v["data"].as_array().unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
        let ok = names == ["eu", "us"]
            && groups.iter().all(|g| g["replicas"].as_array().unwrap().len() == 2 && g["leader"].is_string());
        if ok {
            for g in groups {
                let primary = g["replicas"].as_array().unwrap().iter().find(|r| r["role"] == "primary").unwrap();
                assert_eq!(g["leader"], primary["name"], "{g:#}");
            }
            break;
        }
        assert!(Instant::now() < deadline, "one block, two groups: {v:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.shutdown();
    running.wait().await.unwrap();
}
