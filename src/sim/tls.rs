//! `authwatch simulate --tls`: a throwaway CA and a server certificate made at start (rcgen), so real clients
//! talk to the simulator over https exactly as to SFMC, trusting the CA through `ca_file` (or NODE_EXTRA_CA_CERTS).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use tokio_rustls::rustls;

/// The CA (PEM, for clients to trust) and the rustls config serving the certificate it signed.
pub struct SimTls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

/// A CA and a certificate for `hosts` (DNS names or IP addresses). Key material stays in memory.
pub fn generate(hosts: &[String]) -> Result<SimTls, String> {
    let err = |e: rcgen::Error| format!("cannot make the simulator's TLS certificate: {e}");
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "authwatch simulator CA (throwaway)");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(hosts.to_vec()).map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "authwatch simulator");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let leaf_key = KeyPair::generate().map_err(err)?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let config = crate::tls::config_from(chain, key)?;
    Ok(SimTls {
        ca_pem: ca_cert.pem(),
        config,
    })
}
