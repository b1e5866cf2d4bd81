//! TLS for the simulator: a CA generated at start, written to a PEM file the client can trust,
//! and a server certificate for `localhost` / `127.0.0.1` signed by it.

use std::io;
use std::path::Path;
use std::sync::Arc;

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

pub(crate) fn acceptor(ca_path: &Path) -> io::Result<tokio_rustls::TlsAcceptor> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(io_err)?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mimecast-sim test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_key = rcgen::KeyPair::generate().map_err(io_err)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(io_err)?;

    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(io_err)?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let leaf_key = rcgen::KeyPair::generate().map_err(io_err)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(io_err)?;

    std::fs::write(ca_path, ca_cert.pem())?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io_err)?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .map_err(io_err)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
