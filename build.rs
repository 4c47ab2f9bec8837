//! Build information for `promfed --version`, `/api/v1/status/buildinfo` and
//! `promfed_build_info`, as Prometheus reports its own: revision and branch from git (when the
//! source is a git checkout), who built it and when, and the compiler's version.

use std::process::Command;

fn main() {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
    };
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()).filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    // Prometheus' format: 20261204-03:30:00, UTC.
    let date = Command::new("date")
        .args(["-u", "+%Y%m%d-%H:%M:%S"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PROMFED_REVISION={revision}");
    println!("cargo:rustc-env=PROMFED_BRANCH={branch}");
    println!("cargo:rustc-env=PROMFED_BUILD_USER={user}@{host}");
    println!("cargo:rustc-env=PROMFED_BUILD_DATE={date}");
    println!("cargo:rustc-env=PROMFED_RUSTC_VERSION={rustc_version}");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    println!("cargo:rustc-env=PROMFED_PLATFORM={os}/{arch}");
    // Again when the checked-out commit moves (not at every build: the date would change and
    // the crate be rebuilt for nothing).
    let head_ref = format!(".git/refs/heads/{branch}");
    for path in [".git/HEAD", head_ref.as_str()] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
