//! The loaded config as `/api/v1/status/config` shows it: the file's settings (defaults filled
//! in), as YAML, every secret replaced by `<secret>` as Prometheus shows its own.

use super::FileConfig;
use serde_json::Value;

/// Words that make a key (a field, a header name) hold a secret: `password`, `secret_key`,
/// `credentials`, `bearer_token`, `X-Api-Key`… (paths to secrets, `*_file`, are shown).
const SECRET_WORDS: [&str; 8] =
    ["password", "secret", "token", "credentials", "authorization", "api_key", "api-key", "apikey"];

/// `file` as YAML, secrets redacted.
pub fn redacted_yaml(file: &FileConfig) -> String {
    let mut tree = serde_json::to_value(file).expect("the config serializes");
    redact(&mut tree);
    serde_saphyr::to_string(&tree).unwrap_or_else(|e| format!("# the config could not be shown: {e}\n"))
}

fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    !k.ends_with("_file") && SECRET_WORDS.iter().any(|w| k.contains(w))
}

fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret(k) && !v.is_null() && !v.is_object() {
                    *v = Value::String("<secret>".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_paths_to_them_are_not() {
        let file: FileConfig = serde_saphyr::from_str(
            r#"
server:
  basic_auth: {username: ops, password: hunter2}
groups:
  - name: g
    authorization: {credentials: tok-123}
    basic_auth: {username: u, password_file: /etc/promfed/pw}
    replicas: [{name: a, address: "127.0.0.1:9090"}]
remote_write:
  - url: http://x/push
    headers: {X-Scope-OrgID: team, X-Api-Key: k-456}
"#,
        )
        .unwrap();
        let yaml = redacted_yaml(&file);
        for secret in ["hunter2", "tok-123", "k-456"] {
            assert!(!yaml.contains(secret), "{secret} shown:\n{yaml}");
        }
        for shown in ["/etc/promfed/pw", "username: ops", "X-Scope-OrgID: team", "scrape_interval: 15s"] {
            assert!(yaml.contains(shown), "{shown} missing:\n{yaml}");
        }
        assert!(yaml.contains("<secret>"));
    }
}
