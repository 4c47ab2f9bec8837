//! Certificates and keys named by the config, read and parsed when the config is checked, so
//! that a YAML file given as a certificate, a key that does not match its certificate or a
//! certificate about to expire is said by `check-config`, not found by the first client.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A certificate that expires within this long is warned about (the alerts' first threshold).
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// What a certificate file says that a person must act on.
#[derive(Debug, Default)]
pub struct Findings {
    /// One line per certificate expired or expiring within [`EXPIRY_WARNING`].
    pub expiring: Vec<String>,
}

/// Reads the PEM certificates of `file`: at least one, each parsed as X.509.
pub fn certificates(file: &Path, now: SystemTime) -> Result<(Vec<CertificateDer<'static>>, Findings), String> {
    let pem = read(file)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate (BEGIN CERTIFICATE) in it", file.display()));
    }
    let now = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let mut findings = Findings::default();
    for (i, der) in certs.iter().enumerate() {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("{}: certificate {} is not valid X.509: {e}", file.display(), i + 1))?;
        let not_after = cert.validity().not_after;
        let left = not_after.timestamp() - now;
        let subject = cert.subject().to_string();
        if left < 0 {
            findings.expiring.push(format!("certificate {subject:?} expired on {not_after}"));
        } else if left < EXPIRY_WARNING.as_secs() as i64 {
            findings.expiring.push(format!("certificate {subject:?} expires in {} days ({not_after})", left / 86_400));
        }
    }
    Ok((certs, findings))
}

/// Reads the PEM private key of `file`.
pub fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            format!("{}: no PEM private key (BEGIN PRIVATE KEY, RSA or EC) in it", file.display())
        }
        e => format!("{}: not a PEM private key: {e}", file.display()),
    })
}

/// Checks that `key` is the private key of the first certificate of `certs`.
pub fn key_matches(certs: &[CertificateDer<'static>], key: &PrivateKeyDer<'static>) -> Result<(), String> {
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(key)
        .map_err(|e| format!("the private key cannot sign: {e}"))?;
    rustls::sign::CertifiedKey::new(certs.to_vec(), signing)
        .keys_match()
        .map_err(|_| "the private key is not the key of the certificate".to_owned())
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_yaml_file_is_not_a_certificate_and_a_key_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = write(dir.path(), "promfed.yml", "groups: []\n");
        assert!(certificates(&yaml, SystemTime::now()).unwrap_err().contains("no PEM certificate"));
        assert!(private_key(&yaml).unwrap_err().contains("no PEM private key"));

        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).unwrap();
        let cert = write(dir.path(), "a.crt", &a.cert.pem());
        let (certs, findings) = certificates(&cert, SystemTime::now()).unwrap();
        assert!(findings.expiring.is_empty(), "{findings:?}");
        let own = private_key(&write(dir.path(), "a.key", &a.signing_key.serialize_pem())).unwrap();
        let other = private_key(&write(dir.path(), "b.key", &b.signing_key.serialize_pem())).unwrap();
        key_matches(&certs, &own).unwrap();
        assert!(key_matches(&certs, &other).unwrap_err().contains("not the key of the certificate"));
    }

    #[test]
    fn a_certificate_within_thirty_days_of_its_end_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["a".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2030, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = write(dir.path(), "a.crt", &params.self_signed(&key).unwrap().pem());
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000); // 2030-01-01
        let (_, soon) = certificates(&cert, end - Duration::from_secs(20 * 86_400)).unwrap();
        assert!(soon.expiring[0].contains("expires in 20 days"), "{soon:?}");
        let (_, late) = certificates(&cert, end + Duration::from_secs(86_400)).unwrap();
        assert!(late.expiring[0].contains("expired on"), "{late:?}");
    }
}
