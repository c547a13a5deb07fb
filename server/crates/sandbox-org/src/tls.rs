//! Keys and certificates: the self-signed TLS certificate the standalone sandbox org serves
//! HTTPS with (generated into its state directory on first start), the RSA key pair and
//! certificate of the portal's JWT bearer app, and reading RSA public keys from app
//! certificates to verify JWT assertions.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rsa::pkcs8::{EncodePrivateKey, LineEnding};

/// An RSA public key usable for RS256 verification, from a PEM X.509 certificate.
pub fn rsa_decoding_key(certificate_pem: &str) -> Option<jsonwebtoken::DecodingKey> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(certificate_pem.trim().as_bytes()).ok()?;
    let certificate = pem.parse_x509().ok()?;
    let spki = certificate.public_key();
    // Only RSA keys (rsaEncryption) are acceptable for RS256.
    if spki.algorithm.algorithm.to_id_string() != "1.2.840.113549.1.1.1" {
        return None;
    }
    Some(jsonwebtoken::DecodingKey::from_rsa_der(
        &spki.subject_public_key.data,
    ))
}

/// A PKCS#8 PEM RSA private key and a self-signed certificate for it.
#[derive(Clone)]
pub struct RsaIdentity {
    pub private_key_pem: String,
    pub certificate_pem: String,
}

/// Generates an RSA-2048 key pair and a self-signed certificate naming `common_name`.
pub fn generate_rsa_identity(common_name: &str) -> Result<RsaIdentity, String> {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| format!("generating an RSA key: {e}"))?;
    let private_key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| format!("encoding the RSA key: {e}"))?
        .to_string();
    let key_pair =
        rcgen::KeyPair::from_pem_and_sign_algo(&private_key_pem, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| format!("loading the RSA key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(vec![common_name.to_string()])
        .map_err(|e| format!("certificate parameters: {e}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|e| format!("signing the certificate: {e}"))?;
    Ok(RsaIdentity {
        private_key_pem,
        certificate_pem: certificate.pem(),
    })
}

/// One RSA identity per process for seeding orgs: key generation is slow in debug builds
/// and every test starts a fresh org. Each standalone or embedded org is still its own
/// process-lifetime identity.
pub fn portal_identity() -> Result<RsaIdentity, String> {
    static IDENTITY: OnceLock<Result<RsaIdentity, String>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| generate_rsa_identity("Portcullis portal (sandbox org)"))
        .clone()
}

/// The HTTPS identity of a standalone org, created on first start in the state directory:
/// a small certificate authority (`cert.pem`, the file clients trust) and a server
/// certificate it signed for localhost and the listen address (`server-cert.pem`,
/// `key.pem`). A separate CA, rather than one self-signed server certificate, is what
/// OpenSSL-based clients without partial-chain trust (Python's, for one) accept.
pub fn server_tls(
    state_dir: Option<&Path>,
    hosts: &[String],
) -> Result<(Arc<rustls::ServerConfig>, String), String> {
    let existing = state_dir.and_then(|dir| {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        Some((
            read("cert.pem")?,
            read("server-cert.pem")?,
            read("key.pem")?,
        ))
    });
    let (ca_pem, leaf_pem, key_pem) = match existing {
        Some(files) => files,
        None => {
            let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
            names.extend(hosts.iter().cloned());
            names.sort();
            names.dedup();
            let ca_key =
                rcgen::KeyPair::generate().map_err(|e| format!("generating the CA key: {e}"))?;
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())
                .map_err(|e| format!("CA certificate: {e}"))?;
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca_params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::CrlSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            ca_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "Portcullis sandbox org CA");
            let ca_cert = ca_params
                .self_signed(&ca_key)
                .map_err(|e| format!("signing the CA: {e}"))?;
            let issuer = rcgen::Issuer::new(ca_params, ca_key);
            let leaf_key =
                rcgen::KeyPair::generate().map_err(|e| format!("generating the TLS key: {e}"))?;
            let mut leaf_params = rcgen::CertificateParams::new(names)
                .map_err(|e| format!("TLS certificate names: {e}"))?;
            leaf_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "Portcullis sandbox org");
            leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            leaf_params.key_usages = vec![
                rcgen::KeyUsagePurpose::DigitalSignature,
                rcgen::KeyUsagePurpose::KeyEncipherment,
            ];
            let leaf_cert = leaf_params
                .signed_by(&leaf_key, &issuer)
                .map_err(|e| format!("signing the TLS certificate: {e}"))?;
            let files = (ca_cert.pem(), leaf_cert.pem(), leaf_key.serialize_pem());
            if let Some(dir) = state_dir {
                std::fs::write(dir.join("cert.pem"), &files.0)
                    .map_err(|e| format!("writing cert.pem: {e}"))?;
                std::fs::write(dir.join("server-cert.pem"), &files.1)
                    .map_err(|e| format!("writing server-cert.pem: {e}"))?;
                write_private(&dir.join("key.pem"), &files.2)?;
            }
            files
        }
    };
    // The server presents its certificate followed by the CA's.
    let chain = format!("{leaf_pem}{ca_pem}");
    let certs = rustls_pemfile::certs(&mut chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("server-cert.pem: {e}"))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| format!("key.pem: {e}"))?
        .ok_or("key.pem holds no private key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), ca_pem))
}

/// Writes a file readable only by its owner (private keys).
pub fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("protecting {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_verify_their_own_signatures() {
        let identity = portal_identity().unwrap();
        let key =
            rsa_decoding_key(&identity.certificate_pem).expect("RSA key from the certificate");
        let encoding =
            jsonwebtoken::EncodingKey::from_rsa_pem(identity.private_key_pem.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &serde_json::json!({ "sub": "x" }),
            &encoding,
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).is_ok());
        assert!(rsa_decoding_key("not a certificate").is_none());
    }
}
