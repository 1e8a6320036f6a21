//! How the box checks a TURN server's certificate (`turns:`): the system's CA bundle (the
//! package depends on ca-certificates), or the file `SSL_CERT_FILE` names, as OpenSSL-based
//! tools do (a private CA for a company TURN server, or a test's).

use std::sync::Arc;

pub fn turn_tls_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("CA certificates for TURN over TLS: {e}");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no CA certificate found: TURN over TLS (turns:) cannot verify a server");
    }
    tracing::debug!(added, ignored, "CA certificates for TURN over TLS");
    Arc::new(config_with_roots(roots))
}

/// A client config trusting `roots`.
pub fn config_with_roots(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
