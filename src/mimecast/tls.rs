//! The HTTP client's transport: TLS (the system trust store plus `ca_file`, ring provider),
//! the proxy, timeouts, and the user agent.

use crate::config::Config;
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why the HTTP client could not be built: each names the property to fix.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("property 'ca_file': cannot read '{}': {why}", path.display())]
    CaFileUnreadable { path: PathBuf, why: String },
    #[error("property 'ca_file': '{}' holds an invalid certificate: {why}", path.display())]
    CaFileInvalid { path: PathBuf, why: String },
    #[error("property 'ca_file': certificate in '{}' rejected: {why}", path.display())]
    CaFileRejected { path: PathBuf, why: String },
    #[error("property 'ca_file': '{}' contains no PEM certificate", path.display())]
    CaFileEmpty { path: PathBuf },
    #[error("property 'proxy': not a valid proxy URL")]
    Proxy,
    #[error("TLS setup failed: {0}")]
    Tls(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// Builds the TLS configuration: system trust store plus `ca_file`, ring provider.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, SetupError> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let p = || path.to_path_buf();
        let mut n = 0;
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(|e| {
            SetupError::CaFileUnreadable {
                path: p(),
                why: e.to_string(),
            }
        })? {
            let cert = cert.map_err(|e| SetupError::CaFileInvalid {
                path: p(),
                why: e.to_string(),
            })?;
            roots.add(cert).map_err(|e| SetupError::CaFileRejected {
                path: p(),
                why: e.to_string(),
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(SetupError::CaFileEmpty { path: p() });
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The HTTP client every request of an instance goes through.
pub fn http_client(cfg: &Config) -> Result<reqwest::Client, SetupError> {
    let tls = tls_config(cfg.ca_file.as_deref())?;
    let mut builder = reqwest::Client::builder();
    if let Some(p) = &cfg.proxy {
        let proxy = reqwest::Proxy::all(p.expose_secret()).map_err(|_| SetupError::Proxy)?;
        builder = builder.proxy(proxy);
    }
    builder
        .tls_backend_preconfigured(tls)
        .timeout(cfg.request_timeout)
        .connect_timeout(Duration::from_secs(10).min(cfg.request_timeout))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("fluent-bit-mimecast/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .map_err(|e| SetupError::Build(e.to_string()))
}
