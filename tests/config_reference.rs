//! `docs/configuration.md` is the config reference generated from the config structs
//! (`promfed::config::reference`): this test fails when the committed file and the code
//! disagree. `PROMFED_BLESS=1 cargo test --test config_reference` writes it anew.

use std::path::Path;

#[test]
fn the_committed_reference_is_what_the_code_reads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let generated = promfed::config::reference::markdown();
    if std::env::var_os("PROMFED_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first = committed.lines().zip(generated.lines()).position(|(a, b)| a != b);
        panic!(
            "docs/configuration.md is stale (first difference at line {}): run \
             `PROMFED_BLESS=1 cargo test --test config_reference` and commit it",
            first.map_or(committed.lines().count().min(generated.lines().count()) + 1, |i| i + 1)
        );
    }
}

/// Every key of every section the file can hold is in the reference: none is left out by the
/// generator (checked against keys found in the example config, which a test also parses).
#[test]
fn every_key_of_the_example_is_in_the_reference() {
    let reference = promfed::config::reference::markdown();
    let example = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/promfed.yml")).unwrap();
    let mut missing = Vec::new();
    for line in example.lines() {
        let line = line.trim_start().trim_start_matches("- ");
        if line.starts_with('#') {
            continue;
        }
        let Some((key, _)) = line.split_once(':') else { continue };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()) {
            continue;
        }
        // Keys of free maps (labels, modules by name) are the user's, not ours.
        if ["http_2xx", "tls_connect"].contains(&key) || reference.contains(&format!("| `{key}` |")) {
            continue;
        }
        if !reference.contains(&format!("`{key}`")) {
            missing.push(key.to_owned());
        }
    }
    assert!(missing.is_empty(), "keys of deploy/promfed.yml not in the reference: {missing:?}");
    for section in ["data_dir", "remote_write", "remote_write_receiver", "probes", "dashboards", "static_configs"] {
        assert!(reference.contains(&format!("| `{section}` |")), "{section}");
    }
}
