//! EC2 discovery's credential sources other than static keys, against the moto emulator: a named
//! `profile` from the AWS config files, a profile's `credential_process`, and `role_arn` assumed
//! through STS (moto emulates STS too); and the region taken from the profile when `region` is
//! empty. Each is shown to be what makes the call work: the same call without it fails.
//!
//! One test in its own binary, because it sets process-wide AWS environment variables.
#![cfg(feature = "ec2")]

mod common;

use common::moto::{Moto, ec2_client, launch_tagged, moto_binary};
use promfed::discovery::ec2::{Ec2SdConfig, client, describe};

fn sd(endpoint: &str, extra: &str) -> Ec2SdConfig {
    serde_saphyr::from_str(&format!("{{region: eu-west-1, endpoint: '{endpoint}', {extra}}}")).unwrap()
}

fn sd_without_region(endpoint: &str, extra: &str) -> Ec2SdConfig {
    serde_saphyr::from_str(&format!("{{endpoint: '{endpoint}', {extra}}}")).unwrap()
}

#[tokio::test]
async fn profile_and_role_arn_supply_the_credentials() {
    let Some(bin) = moto_binary() else { return };
    let moto = Moto::start(&bin).await;
    let endpoint = moto.endpoint.clone();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("credentials"),
        "[promfed-test]\naws_access_key_id = testing\naws_secret_access_key = testing\n",
    )
    .unwrap();
    // `credential_process` prints the keys as the AWS CLI documents (Version 1 JSON).
    let process = dir.path().join("creds.sh");
    std::fs::write(
        &process,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&process, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("config"),
        format!(
            "[profile promfed-test]\nregion = eu-west-1\n\n[profile by-process]\ncredential_process = {}\n\n\
             [profile no-region]\n",
            process.display()
        ),
    )
    .unwrap();
    // SAFETY: this binary has one test, and these are set before any SDK client exists. No
    // credentials from the environment, never the instance-metadata address, the files above.
    unsafe {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::remove_var("AWS_ACCESS_KEY_ID");
        std::env::remove_var("AWS_SECRET_ACCESS_KEY");
        std::env::remove_var("AWS_SESSION_TOKEN");
        std::env::remove_var("AWS_PROFILE");
        std::env::remove_var("AWS_REGION");
        std::env::remove_var("AWS_DEFAULT_REGION");
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("credentials"));
        std::env::set_var("AWS_CONFIG_FILE", dir.path().join("config"));
    }

    // A named profile works; a profile that does not exist leaves no credentials.
    let with_profile = sd(&endpoint, "profile: promfed-test");
    describe(&client(&with_profile).await, &with_profile).await.expect("profile credentials");
    let missing = sd(&endpoint, "profile: nobody");
    let err = describe(&client(&missing).await, &missing).await.unwrap_err();
    assert!(err.to_lowercase().contains("credential"), "{err}");

    // No `region`: the profile's region is used (and labelled), as the SDK's region chain finds
    // it; a profile without one, with instance metadata disabled, leaves none and says so.
    let from_profile = sd_without_region(&endpoint, "profile: promfed-test, access_key: testing, secret_key: testing");
    let c = client(&from_profile).await;
    assert_eq!(c.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
    launch_tagged(&ec2_client(&endpoint), 1, &[("Name", "one")]).await;
    let targets = describe(&c, &from_profile).await.expect("region from the profile");
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[0]["__meta_ec2_region"], "eu-west-1");
    let nowhere = sd_without_region(&endpoint, "profile: no-region, access_key: testing, secret_key: testing");
    let err = describe(&client(&nowhere).await, &nowhere).await.unwrap_err();
    assert!(err.contains("no AWS region"), "{err}");

    // credential_process: the keys come from the program (a profile without it has none).
    let by_process = sd(&endpoint, "profile: by-process");
    describe(&client(&by_process).await, &by_process).await.expect("credential_process credentials");
    let without = sd(&endpoint, "profile: no-region");
    let err = describe(&client(&without).await, &without).await.unwrap_err();
    assert!(err.to_lowercase().contains("credential"), "{err}");

    // role_arn: the static keys are exchanged for the role's through STS. STS is reached at the
    // emulator through the SDK's standard endpoint override; pointed at a closed port, the
    // assume-role step fails and so does the call, showing the role path is the one used.
    let role = "arn:aws:iam::123456789012:role/promfed-discovery";
    let with_role = sd(&endpoint, &format!("access_key: testing, secret_key: testing, role_arn: '{role}'"));
    unsafe { std::env::set_var("AWS_ENDPOINT_URL_STS", &endpoint) };
    describe(&client(&with_role).await, &with_role).await.expect("assumed-role credentials");
    unsafe { std::env::set_var("AWS_ENDPOINT_URL_STS", format!("http://127.0.0.1:{}", common::free_port())) };
    let err = describe(&client(&with_role).await, &with_role).await.unwrap_err();
    assert!(err.to_lowercase().contains("credential"), "{err}");
}
