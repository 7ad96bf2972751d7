//! TLS settings for talking to the masters (and the IAM login endpoint): which roots verify
//! the server, whether verification is skipped, and the client certificate (mTLS).
//!
//! product.md difference 5: with `mesosHTTPSOn` and no `caCertFile` the master's certificate is
//! verified against the **system** roots (the OS bundle found the usual way, `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` honoured; the bundled Mozilla roots if the system has none); with `caCertFile`
//! only the CAs in that file are trusted; skipping verification needs an explicit
//! `mesosHTTPSInsecure: true`. Everything here runs once at startup and every file problem is a
//! [`TlsError`] naming the config key, so a bad PEM, a key that does not match its certificate or
//! an X.509 v1 client certificate (which makes the HTTP client panic inside its first request)
//! stops the process before it serves, instead of failing on every poll.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use crate::config::Config;

/// Certificate and key files are small; anything larger is not one.
const MAX_PEM_BYTES: u64 = 4 << 20;

/// A TLS file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {path:?}: {reason}")]
pub struct TlsError {
    /// `caCertFile`, `certFile` or `keyFile`.
    pub key: &'static str,
    /// The path as configured.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// Reads a PEM file (bounded).
fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    use std::io::Read;
    let err = |reason: String| TlsError {
        key,
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(err(format!("larger than {MAX_PEM_BYTES} bytes")));
    }
    Ok(bytes)
}

/// All certificates in a PEM file; an error if there is none.
fn read_certs(key: &'static str, path: &Path) -> Result<Vec<Certificate<'static>>, TlsError> {
    let err = |reason: String| TlsError {
        key,
        path: path.to_path_buf(),
        reason,
    };
    let bytes = read_file(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| Certificate::from_der(c.as_ref()).to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err("holds no PEM CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The first private key in a PEM file, as rustls and as the HTTP client take it.
fn read_key(
    key: &'static str,
    path: &Path,
) -> Result<(PrivateKeyDer<'static>, PrivateKey<'static>), TlsError> {
    let err = |reason: &str| TlsError {
        key,
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let bytes = read_file(key, path)?;
    let der = PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|_| err("holds no PEM PRIVATE KEY block (PKCS#1, PKCS#8 or SEC1)"))?;
    let client = PrivateKey::from_pem(&bytes)
        .map_err(|_| err("holds no PEM PRIVATE KEY block (PKCS#1, PKCS#8 or SEC1)"))?;
    Ok((der, client.to_owned()))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks `certs` as trust anchors the way the HTTP client will use them; unparsable ones
/// are an error here (the client would silently ignore them).
fn check_roots(key: &'static str, path: &Path, certs: &[Certificate<'_>]) -> Result<(), TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for (i, c) in certs.iter().enumerate() {
        store
            .add(CertificateDer::from(c.der()))
            .map_err(|e| TlsError {
                key,
                path: path.to_path_buf(),
                reason: format!("certificate #{} is not a usable CA: {e}", i + 1),
            })?;
    }
    Ok(())
}

/// Checks a client certificate chain and key exactly as the HTTP client's TLS setup will (it
/// panics on what this rejects): the key must parse, match the leaf, and the leaf must be X.509 v3.
fn check_client_cert(
    cert_path: &Path,
    chain: &[Certificate<'_>],
    key: PrivateKeyDer<'static>,
) -> Result<(), TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| TlsError {
            key: "certFile",
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?
        .with_root_certificates(rustls::RootCertStore::empty());
    let chain: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    builder
        .with_client_auth_cert(chain, key)
        .map(|_| ())
        .map_err(|e| TlsError {
            key: "certFile",
            path: cert_path.to_path_buf(),
            reason: match e {
                rustls::Error::InvalidCertificate(rustls::CertificateError::Other(o))
                    if o.to_string().contains("UnsupportedCertVersion") =>
                {
                    "the certificate is X.509 v1; a v3 certificate is required \
                     (openssl x509 -req ... -extfile with basicConstraints/keyUsage)"
                        .into()
                }
                other => format!("unusable client certificate or keyFile: {other}"),
            },
        })
}

/// The system's root certificates, or None if it has none.
fn system_roots() -> Option<Vec<Certificate<'static>>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::debug!("system root certificates: {e}");
    }
    let certs: Vec<Certificate<'static>> = found
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    (!certs.is_empty()).then_some(certs)
}

/// Builds the TLS settings for `config`, reading and checking every file it names.
pub fn tls_config(config: &Config) -> Result<TlsConfig, TlsError> {
    let mut b = TlsConfig::builder();
    if config.mesos_https_insecure {
        b = b.disable_verification(true);
    } else if let Some(path) = &config.ca_cert_file {
        let certs = read_certs("caCertFile", path)?;
        check_roots("caCertFile", path, &certs)?;
        b = b.root_certs(RootCerts::new_with_certs(&certs));
    } else if config.mesos_https_on || config.mesos_authentication == crate::config::MesosAuth::Iam
    {
        b = b.root_certs(match system_roots() {
            Some(certs) => RootCerts::new_with_certs(&certs),
            None => {
                log::warn!("no system root certificates found; using the bundled Mozilla roots");
                RootCerts::WebPki
            }
        });
    }
    if let (Some(cert_path), Some(key_path)) = (&config.cert_file, &config.key_file) {
        let chain = read_certs("certFile", cert_path)?;
        let (key_der, key) = read_key("keyFile", key_path)?;
        check_client_cert(cert_path, &chain, key_der)?;
        b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn base() -> Config {
        let mut c = crate::config::default_config();
        c.mesos_https_on = true;
        c
    }

    #[test]
    fn ca_file_without_certificates_names_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = base();
        c.ca_cert_file = Some(write(dir.path(), "ca.pem", "not pem at all\n"));
        let e = tls_config(&c).expect_err("must fail");
        assert_eq!(e.key, "caCertFile");
        assert!(e.to_string().starts_with("caCertFile: "), "{e}");
    }

    #[test]
    fn garbage_inside_a_certificate_block_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = base();
        c.ca_cert_file = Some(write(
            dir.path(),
            "ca.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ));
        let e = tls_config(&c).expect_err("must fail");
        assert_eq!(e.key, "caCertFile", "{e}");
    }

    #[test]
    fn missing_key_file_content_names_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let mut c = base();
        c.cert_file = Some(write(dir.path(), "c.pem", &ca.cert.pem()));
        c.key_file = Some(write(dir.path(), "k.pem", &ca.cert.pem()));
        let e = tls_config(&c).expect_err("must fail");
        assert_eq!(e.key, "keyFile", "{e}");
    }

    #[test]
    fn mismatched_key_is_rejected_and_matching_key_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = rcgen::generate_simple_self_signed(vec!["a".into()]).expect("cert");
        let b = rcgen::generate_simple_self_signed(vec!["b".into()]).expect("cert");
        let mut c = base();
        c.cert_file = Some(write(dir.path(), "a.pem", &a.cert.pem()));
        c.key_file = Some(write(dir.path(), "b.key", &b.signing_key.serialize_pem()));
        let e = tls_config(&c).expect_err("mismatch must fail");
        assert_eq!(e.key, "certFile", "{e}");
        c.key_file = Some(write(dir.path(), "a.key", &a.signing_key.serialize_pem()));
        let cfg = tls_config(&c).expect("matching pair");
        assert!(cfg.client_cert().is_some());
    }

    /// An X.509 v1 certificate (what `openssl x509 -req` makes without `-extfile`) and its key.
    const V1_CERT: &str = "-----BEGIN CERTIFICATE-----\n\
MIIBJDCBywIUc1qfmLiBzdEfeslqR7a1BJwEQbcwCgYIKoZIzj0EAwIwFDESMBAG\n\
A1UEAwwJdjEtY2xpZW50MCAXDTI2MTEyNTEyNDYzNloYDzIxMjYxMTAxMTI0NjM2\n\
WjAUMRIwEAYDVQQDDAl2MS1jbGllbnQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n\
AAQ5INpAQbsR/D0Cq8CVHlYrq10v9R3mVVhyEdqyT22VQXni1M81oylqcf4jzm/p\n\
f/HpKZZm/cBtLN9jatlfQqz1MAoGCCqGSM49BAMCA0gAMEUCIBkyyTLDwri48Vt9\n\
Q+NcK/V1j1hZpVrvzPpHe6OjTw+HAiEA5xn8x9/naar3OJRY4N8U52dI7J7I/RHB\n\
ZuViZsJjCJ4=\n\
-----END CERTIFICATE-----\n\
";
    const V1_KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/Qj0ziXght4KjCV7\n\
3yBqK+iAs/Qc9aeak/4jb7O+b8ShRANCAAQ5INpAQbsR/D0Cq8CVHlYrq10v9R3m\n\
VVhyEdqyT22VQXni1M81oylqcf4jzm/pf/HpKZZm/cBtLN9jatlfQqz1\n\
-----END PRIVATE KEY-----\n\
";

    #[test]
    fn x509_v1_client_certificate_is_rejected_at_startup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = base();
        c.cert_file = Some(write(dir.path(), "v1.pem", V1_CERT));
        c.key_file = Some(write(dir.path(), "v1.key", V1_KEY));
        let e = tls_config(&c).expect_err("v1 must fail");
        assert_eq!(e.key, "certFile");
        assert!(e.reason.contains("v1"), "{e}");
    }

    #[test]
    fn insecure_skips_roots_and_default_uses_system_or_bundled_roots() {
        let mut c = base();
        c.mesos_https_insecure = true;
        assert!(tls_config(&c).expect("ok").disable_verification());
        c.mesos_https_insecure = false;
        let cfg = tls_config(&c).expect("ok");
        assert!(!cfg.disable_verification());
        assert!(matches!(
            cfg.root_certs(),
            RootCerts::Specific(_) | RootCerts::WebPki
        ));
    }
}
