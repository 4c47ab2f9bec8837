//! EC2 discovery (`ec2_sd_configs`) through aws-sdk-ec2 `DescribeInstances`, with Prometheus'
//! fields and target labels: `__address__` is the private IP and `port`, and the
//! `__meta_ec2_*` labels are those of Prometheus' EC2 SD (tags sanitised into label names, list
//! values wrapped in commas). Only running instances are returned.
//!
//! On AWS errors, throttling or timeouts the last good target set is kept, the refresh is
//! retried with exponential backoff (1 s doubling up to `refresh_interval`), and the failure is
//! counted in `promfed_sd_refresh_failures_total{mechanism="ec2"}`.
//!
//! Credentials: `access_key`/`secret_key` when given, else `profile` (a named profile), else the
//! standard AWS chain (environment, profile files — static keys, `credential_process`,
//! `role_arn`/`source_profile` —, web identity, ECS, instance metadata); `role_arn` is assumed on
//! top of whichever applies. Profiles using AWS SSO or `aws login` are not supported (aws-config
//! is built without its `sso` and `credentials-login` features). The region, when `region` is
//! empty, comes from the standard chain too: `AWS_REGION`/`AWS_DEFAULT_REGION`, the profile's
//! `region`, instance metadata. The IAM policy needed is in `deploy/iam/`.

pub use crate::config::discovery::{Ec2Filter, Ec2SdConfig};

/// Prometheus' `strutil.SanitizeLabelName`: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn sanitize_label_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

#[cfg(feature = "ec2")]
pub use sdk::{Ec2Discoverer, client, describe, instance_labels};

#[cfg(feature = "ec2")]
mod sdk {
    use crate::config::Group;
    use crate::config::discovery::Ec2SdConfig;
    use crate::discovery::ec2::sanitize_label_name;
    use crate::discovery::source::{Announcer, Discoverer, DiscoveryFuture, TargetSet};
    use crate::relabel::Labels;
    use crate::telemetry::{MechanismLabels, Metrics};
    use aws_sdk_ec2::Client;
    use aws_sdk_ec2::config::{Credentials, Region};
    use aws_sdk_ec2::types::{Filter, Instance, InstanceStateName};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    /// The `__meta_ec2_*` labels of one instance, or `None` when it has no private IP (it
    /// cannot be scraped at its private address). Names, meanings and presence follow
    /// Prometheus' EC2 SD: `public_dns_name` only with a public IP; `vpc_id`,
    /// `primary_subnet_id`, `subnet_id` (each subnet once, in the order EC2 lists the
    /// interfaces) and `ipv6_addresses` only for an instance in a VPC.
    pub fn instance_labels(i: &Instance, owner_id: &str, region: &str, port: u16) -> Option<Labels> {
        let private_ip = i.private_ip_address()?;
        let mut l = Labels::new();
        let mut set = |k: &str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                l.insert(format!("__meta_ec2_{k}"), v.to_owned());
            }
        };
        set("ami", i.image_id());
        set("architecture", i.architecture().map(|a| a.as_str()));
        set("availability_zone", i.placement().and_then(|p| p.availability_zone()));
        set("instance_id", i.instance_id());
        set("instance_lifecycle", i.instance_lifecycle().map(|x| x.as_str()));
        set("instance_state", i.state().and_then(|s| s.name()).map(|s| s.as_str()));
        set("instance_type", i.instance_type().map(|t| t.as_str()));
        set("owner_id", Some(owner_id));
        set("platform", i.platform().map(|p| p.as_str()));
        set("private_dns_name", i.private_dns_name());
        set("private_ip", Some(private_ip));
        if let Some(public_ip) = i.public_ip_address() {
            set("public_ip", Some(public_ip));
            set("public_dns_name", i.public_dns_name());
        }
        set("region", Some(region));
        if let Some(vpc) = i.vpc_id() {
            set("vpc_id", Some(vpc));
            set("primary_subnet_id", i.subnet_id());
            // Lists are wrapped in commas so that a regex like `.*,subnet-1,.*` matches one
            // element; two interfaces in one subnet name it once.
            let mut subnets: Vec<&str> = Vec::new();
            for s in i.network_interfaces().iter().filter_map(|n| n.subnet_id()) {
                if !subnets.contains(&s) {
                    subnets.push(s);
                }
            }
            l.insert("__meta_ec2_subnet_id".into(), format!(",{},", subnets.join(",")));
            let ipv6: Vec<&str> = i
                .network_interfaces()
                .iter()
                .filter(|n| n.subnet_id().is_some())
                .flat_map(|n| n.ipv6_addresses().iter().filter_map(|a| a.ipv6_address()))
                .collect();
            if !ipv6.is_empty() {
                l.insert("__meta_ec2_ipv6_addresses".into(), format!(",{},", ipv6.join(",")));
            }
        }
        for t in i.tags() {
            if let (Some(k), Some(v)) = (t.key(), t.value()) {
                l.insert(format!("__meta_ec2_tag_{}", sanitize_label_name(k)), v.to_owned());
            }
        }
        let address =
            if private_ip.contains(':') { format!("[{private_ip}]:{port}") } else { format!("{private_ip}:{port}") };
        l.insert("__address__".into(), address);
        Some(l)
    }

    /// Builds the SDK client for a config. Without `region` the SDK's region chain runs (the
    /// environment, the profile, instance metadata); a client left without a region fails
    /// every [`describe`].
    pub async fn client(c: &Ec2SdConfig) -> Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = c.region.as_ref().filter(|r| !r.is_empty()) {
            loader = loader.region(Region::new(region.clone()));
        }
        // The profile also gives the region; static keys, when given, override its credentials.
        if let Some(p) = &c.profile {
            loader = loader.profile_name(p);
        }
        if let (Some(ak), Some(sk)) = (&c.access_key, &c.secret_key) {
            loader = loader.credentials_provider(Credentials::new(ak, sk, None, None, "promfed-config"));
        }
        let mut base = loader.load().await;
        if let Some(arn) = &c.role_arn {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(arn).session_name("promfed");
            if let Some(region) = base.region() {
                provider = provider.region(region.clone());
            }
            let provider = provider.configure(&base).build().await;
            base = base
                .into_builder()
                .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(provider))
                .build();
        }
        let mut conf = aws_sdk_ec2::config::Builder::from(&base);
        if let Some(e) = &c.endpoint {
            conf = conf.endpoint_url(e);
        }
        Client::from_conf(conf.build())
    }

    /// Lists the running instances matching the filters, every page, as labelled targets.
    pub async fn describe(client: &Client, c: &Ec2SdConfig) -> Result<Vec<Labels>, String> {
        let Some(region) = client.config().region().map(|r| r.as_ref().to_owned()) else {
            return Err("no AWS region: set `region`, AWS_REGION, or a region in the AWS profile (on EC2, \
                instance metadata gives it)"
                .to_owned());
        };
        let mut filters: Vec<Filter> = c
            .filters
            .iter()
            .map(|f| Filter::builder().name(&f.name).set_values(Some(f.values.clone())).build())
            .collect();
        if !c.filters.iter().any(|f| f.name == "instance-state-name") {
            filters.push(Filter::builder().name("instance-state-name").values("running").build());
        }
        let mut pages =
            client.describe_instances().set_filters(Some(filters)).max_results(c.page_size).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| format!("DescribeInstances failed: {}", aws_sdk_ec2::error::DisplayErrorContext(e)))?;
            for r in page.reservations() {
                let owner = r.owner_id().unwrap_or("");
                for i in r.instances() {
                    if i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Running) {
                        continue;
                    }
                    if let Some(l) = instance_labels(i, owner, &region, c.port) {
                        out.push(l);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Discovers a group's replicas (or a template's groups) from EC2.
    pub struct Ec2Discoverer {
        group: String,
        configs: Vec<Ec2SdConfig>,
        announcer: Announcer,
        metrics: Arc<Metrics>,
    }

    impl Ec2Discoverer {
        /// A discoverer for the group (or `discover_groups` template) of `announcer`.
        pub fn new(announcer: Announcer, metrics: Arc<Metrics>) -> Self {
            let config: &Group = announcer.config();
            Ec2Discoverer { group: config.name.clone(), configs: config.ec2_sd.clone(), announcer, metrics }
        }
    }

    impl Discoverer for Ec2Discoverer {
        fn run(self: Box<Self>, tx: mpsc::Sender<TargetSet>, shutdown: CancellationToken) -> DiscoveryFuture {
            Box::pin(async move {
                let mut this = *self;
                let mut clients = Vec::new();
                for c in &this.configs {
                    clients.push(client(c).await);
                }
                let refresh =
                    this.configs.iter().map(|c| c.refresh_interval.0).min().unwrap_or(Duration::from_secs(60));
                let mechanism = MechanismLabels { mechanism: "ec2".into() };
                let mut last_good: Vec<Option<Vec<Labels>>> = vec![None; this.configs.len()];
                let mut backoff = Duration::from_secs(1);
                loop {
                    let mut failed = false;
                    for (k, (c, client)) in this.configs.iter().zip(&clients).enumerate() {
                        let result = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            r = tokio::time::timeout(refresh.max(Duration::from_secs(10)), describe(client, c)) => r,
                        };
                        match result {
                            Ok(Ok(targets)) => last_good[k] = Some(targets),
                            Ok(Err(e)) => {
                                failed = true;
                                tracing::warn!(group = %this.group, "ec2 discovery: {e}; keeping the last good targets");
                            }
                            Err(_) => {
                                failed = true;
                                tracing::warn!(group = %this.group, "ec2 discovery: DescribeInstances timed out; keeping the last good targets");
                            }
                        }
                    }
                    crate::discovery::source::record_refresh(&this.metrics, &mechanism, failed);
                    // Until every config has answered once there is no set to announce.
                    if last_good.iter().all(Option::is_some) {
                        let targets: Vec<Labels> = last_good.iter().flatten().flatten().cloned().collect();
                        if !this.announcer.announce(&targets, !failed, "ec2", &tx).await {
                            return;
                        }
                    }
                    let wait = if failed {
                        let w = backoff;
                        backoff = (backoff * 2).min(refresh);
                        w
                    } else {
                        backoff = Duration::from_secs(1);
                        refresh
                    };
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_are_sanitised_like_prometheus() {
        assert_eq!(sanitize_label_name("federation-role"), "federation_role");
        assert_eq!(sanitize_label_name("aws:autoscaling:groupName"), "aws_autoscaling_groupName");
        assert_eq!(sanitize_label_name("Name"), "Name");
    }

    #[test]
    fn config_problems_are_named() {
        let c: Ec2SdConfig =
            serde_saphyr::from_str("{region: eu-west-1, access_key: x, page_size: 2, endpoint: 'localhost:5000'}")
                .unwrap();
        let fields: Vec<&str> = c.problems().iter().map(|(f, _)| *f).collect();
        assert!(fields.contains(&"access_key"));
        assert!(fields.contains(&"page_size"));
        assert!(fields.contains(&"endpoint"));
        let ok: Ec2SdConfig = serde_saphyr::from_str("{region: eu-west-1}").unwrap();
        assert_eq!(ok.refresh_interval.0.as_secs(), 60);
        assert_eq!(ok.port, 80);
        assert!(serde_saphyr::from_str::<Ec2SdConfig>("{region: x, regoin: y}").is_err());
    }

    #[cfg(feature = "ec2")]
    #[test]
    fn instance_labels_follow_prometheus() {
        use aws_sdk_ec2::types::*;
        let i = Instance::builder()
            .instance_id("i-0123")
            .image_id("ami-1")
            .architecture(ArchitectureValues::X8664)
            .placement(Placement::builder().availability_zone("eu-west-1a").build())
            .state(InstanceState::builder().name(InstanceStateName::Running).build())
            .instance_type(InstanceType::T3Micro)
            .subnet_id("subnet-1")
            .private_dns_name("ip-10-0-1-5.internal")
            .private_ip_address("10.0.1.5")
            .public_ip_address("54.1.2.3")
            .vpc_id("vpc-1")
            .network_interfaces(InstanceNetworkInterface::builder().subnet_id("subnet-1").build())
            .network_interfaces(InstanceNetworkInterface::builder().subnet_id("subnet-2").build())
            .tags(Tag::builder().key("federation-role").value("primary").build())
            .tags(Tag::builder().key("Name").value("prom-a").build())
            .build();
        let l = instance_labels(&i, "123456789012", "eu-west-1", 9090).unwrap();
        let get = |k: &str| l.get(k).map(String::as_str);
        assert_eq!(get("__address__"), Some("10.0.1.5:9090"));
        assert_eq!(get("__meta_ec2_instance_id"), Some("i-0123"));
        assert_eq!(get("__meta_ec2_architecture"), Some("x86_64"));
        assert_eq!(get("__meta_ec2_availability_zone"), Some("eu-west-1a"));
        assert_eq!(get("__meta_ec2_instance_state"), Some("running"));
        assert_eq!(get("__meta_ec2_instance_type"), Some("t3.micro"));
        assert_eq!(get("__meta_ec2_owner_id"), Some("123456789012"));
        assert_eq!(get("__meta_ec2_primary_subnet_id"), Some("subnet-1"));
        assert_eq!(get("__meta_ec2_subnet_id"), Some(",subnet-1,subnet-2,"));
        assert_eq!(get("__meta_ec2_public_ip"), Some("54.1.2.3"));
        assert_eq!(get("__meta_ec2_region"), Some("eu-west-1"));
        assert_eq!(get("__meta_ec2_vpc_id"), Some("vpc-1"));
        assert_eq!(get("__meta_ec2_tag_federation_role"), Some("primary"));
        assert_eq!(get("__meta_ec2_tag_Name"), Some("prom-a"));
        assert_eq!(get("__meta_ec2_platform"), None, "absent fields are absent labels");
        // No private IP: not a target.
        assert!(instance_labels(&Instance::builder().instance_id("i-1").build(), "o", "r", 80).is_none());
    }

    /// Two interfaces in one subnet name it once in `__meta_ec2_subnet_id`, as Prometheus'
    /// EC2 SD de-duplicates it (keeping EC2's order); IPv6 addresses of every interface are
    /// listed; the public DNS name comes only with a public IP; outside a VPC there are no
    /// subnet, VPC or IPv6 labels.
    #[cfg(feature = "ec2")]
    #[test]
    fn subnets_are_listed_once_like_prometheus() {
        use aws_sdk_ec2::types::*;
        let nic = |subnet: &str, ipv6: &[&str]| {
            let mut b = InstanceNetworkInterface::builder().subnet_id(subnet);
            for a in ipv6 {
                b = b.ipv6_addresses(InstanceIpv6Address::builder().ipv6_address(*a).build());
            }
            b.build()
        };
        let i = Instance::builder()
            .instance_id("i-1")
            .private_ip_address("10.0.1.5")
            .public_dns_name("ec2-54-1-2-3.example")
            .vpc_id("vpc-1")
            .subnet_id("subnet-2")
            .network_interfaces(nic("subnet-2", &["2001:db8::1"]))
            .network_interfaces(nic("subnet-1", &[]))
            .network_interfaces(nic("subnet-2", &["2001:db8::2", "2001:db8::3"]))
            .build();
        let l = instance_labels(&i, "o", "r", 80).unwrap();
        assert_eq!(l["__meta_ec2_subnet_id"], ",subnet-2,subnet-1,");
        assert_eq!(l["__meta_ec2_ipv6_addresses"], ",2001:db8::1,2001:db8::2,2001:db8::3,");
        assert_eq!(l["__meta_ec2_primary_subnet_id"], "subnet-2");
        assert!(!l.contains_key("__meta_ec2_public_dns_name"), "no public IP, no public DNS name: {l:?}");
        let classic =
            Instance::builder().instance_id("i-2").private_ip_address("10.0.1.6").subnet_id("subnet-9").build();
        let l = instance_labels(&classic, "o", "r", 80).unwrap();
        let keys: Vec<&str> = l.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "__address__",
                "__meta_ec2_instance_id",
                "__meta_ec2_owner_id",
                "__meta_ec2_private_ip",
                "__meta_ec2_region"
            ]
        );
    }
}
