//! The HTTP connection to an org: rustls with the operating system's trusted roots plus an
//! optional extra CA (the sandbox org's self-signed certificate), timeouts, our User-Agent,
//! and the mapping of connection failures to [`TransportKind`]s.
//!
//! Public roots come from `rustls-platform-verifier` (through reqwest), not a bundled
//! `webpki-roots` list: it is already part of reqwest's rustls set-up (no new dependency),
//! and it trusts what the operator's machine trusts, so a corporate TLS-inspecting proxy's
//! CA or a revoked root is handled by the OS's certificate store rather than by rebuilding
//! the portal. Containers need the `ca-certificates` package.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result, TransportKind};

/// `portcullis/<version>`: lets Salesforce admins see our calls in their logs.
pub const USER_AGENT: &str = concat!("portcullis/", env!("CARGO_PKG_VERSION"));

/// The most of an error response body read into memory.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Connection settings shared by every Salesforce call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// An extra trusted root (PEM, one or more certificates), added to the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The whole request, from sending to the last byte of the response (downloads: the
    /// longest pause between two reads instead).
    pub request_timeout: Duration,
    /// Establishing the TCP and TLS connection.
    pub connect_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            ca_file: None,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A reqwest client configured for Salesforce. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    request_timeout: Duration,
}

impl HttpClient {
    pub fn new(options: &HttpOptions) -> Result<Self> {
        ensure_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(options.connect_timeout)
            // Streaming downloads have no overall deadline, only this idle limit; other
            // requests set `request_timeout` per request.
            .read_timeout(options.request_timeout)
            .tls_backend_rustls();
        if let Some(path) = &options.ca_file {
            builder = builder.tls_certs_merge(read_ca_file(path)?);
        }
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {}", chain(&e))))?;
        Ok(Self {
            client,
            request_timeout: options.request_timeout,
        })
    }

    /// The underlying reqwest client, for requests this crate does not model.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// reqwest is built without a bundled crypto provider; the portal installs ring at start-up.
/// Tools and tests that build a client without doing so get ring too, instead of reqwest's
/// panic. Installing fails only if another thread won the race, which is fine.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read the CA file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::Config(format!(
            "the CA file {} is not PEM certificates: {}",
            path.display(),
            chain(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "the CA file {} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// An error and its causes, one line ("error sending request: connection refused").
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Maps a reqwest failure to a transport error, keeping apart "never sent" from "maybe sent".
pub(crate) fn transport_error(error: reqwest::Error) -> Error {
    // Drop the URL: query strings may hold record data, and it says nothing the caller
    // does not know.
    let error = error.without_url();
    let kind = if error.is_connect() {
        TransportKind::Connect
    } else if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_builder() {
        return Error::InvalidRequest(chain(&error));
    } else {
        TransportKind::Interrupted
    };
    Error::Transport {
        kind,
        message: chain(&error),
    }
}

/// Reads a whole (successful) response body.
pub(crate) async fn read_body(response: reqwest::Response) -> Result<Bytes> {
    response.bytes().await.map_err(transport_error)
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of an error response; the rest is not needed to
/// explain the failure.
pub(crate) async fn read_error_body(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_the_portal_and_version() {
        assert!(USER_AGENT.starts_with("portcullis/"));
        assert!(USER_AGENT.len() > "portcullis/".len());
    }

    #[test]
    fn builds_without_a_ca_file() {
        let client = HttpClient::new(&HttpOptions::default()).unwrap();
        assert_eq!(client.request_timeout(), Duration::from_secs(60));
    }

    #[test]
    fn a_missing_or_bad_ca_file_is_a_configuration_error() {
        let missing = HttpOptions {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..HttpOptions::default()
        };
        assert!(
            matches!(HttpClient::new(&missing), Err(Error::Config(m)) if m.contains("cannot read"))
        );

        let dir = std::env::temp_dir().join(format!("sf-ca-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-cert.pem");
        std::fs::write(&path, "hello").unwrap();
        let bad = HttpOptions {
            ca_file: Some(path),
            ..HttpOptions::default()
        };
        assert!(matches!(HttpClient::new(&bad), Err(Error::Config(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pem_ca_file_is_accepted() {
        let dir = std::env::temp_dir().join(format!("sf-ca-ok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, TEST_CA).unwrap();
        let options = HttpOptions {
            ca_file: Some(path),
            ..HttpOptions::default()
        };
        assert!(HttpClient::new(&options).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A throwaway self-signed CA (CN=portcullis-test-ca), as the sandbox org would serve.
    const TEST_CA: &str = include_str!("../tests/fixtures/test-ca.pem");
}
