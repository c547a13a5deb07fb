//! The syslog sink: each entry an RFC 5424 message over TCP or TLS (RFC 5425), framed by
//! octet counting (RFC 6587 §3.4.1: `LENGTH SP MESSAGE`).
//!
//! A message is `<110>1 TIMESTAMP HOSTNAME portcullis - SEQ [audit@32473 seq="SEQ"
//! hash="HASH"] BOM JSON`: facility 13 (log audit) with severity informational (success)
//! or notice (failure, denied), the entry's time in UTC with milliseconds, the entry's
//! `seq` as MSGID and again in the structured data with its hash (32473 is the private
//! enterprise number RFC 5612 reserves for documentation: no number is registered for
//! Portcullis), and the entry's JSON line (`audit::Entry::json_line`) as a UTF-8 message.
//!
//! Plain syslog has no acknowledgement, and a TCP write only says the bytes reached this
//! machine's send buffer. So each batch goes on a connection of its own: the portal writes
//! the batch, ends its side (TLS `close_notify`, then the TCP FIN) and waits for the
//! receiver to close its side. A receiver that read everything and closed answers with a
//! FIN: the batch is acknowledged. One that died with bytes unread answers with a reset (or
//! never): the batch is not, and goes again. rsyslog, syslog-ng and the test's receiver
//! read to the end of the stream and close.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::audit::Entry;

/// Connecting (TCP and TLS handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Writing a batch, and then waiting for the receiver to close.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// `<facility 13: log audit>`, as the PRI's high part.
const FACILITY_LOG_AUDIT: u8 = 13;
/// The documentation PEN of RFC 5612, for the structured data's id.
const SD_ID: &str = "audit@32473";

/// Where the syslog sink sends: `tcp://host:port` or `tls://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogTarget {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl SyslogTarget {
    /// `tcp://host:port` or `tls://host:port` (a port is required: 514 and 6514 are only
    /// conventions).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let url = url::Url::parse(raw).map_err(|e| {
            format!("'{raw}' is not a URL ({e}): use tcp://host:port or tls://host:port")
        })?;
        let tls = match url.scheme() {
            "tcp" => false,
            "tls" => true,
            other => {
                return Err(format!(
                    "'{other}://' is not a syslog transport: use tcp://host:port or tls://host:port"
                ));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("'{raw}' has no host: use tcp://host:port or tls://host:port"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().ok_or_else(|| {
            format!("'{raw}' has no port: use tcp://host:port or tls://host:port")
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("a syslog URL takes no user or password".into());
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(format!(
                "'{raw}' has a path or query: use tcp://host:port or tls://host:port"
            ));
        }
        Ok(Self { host, port, tls })
    }

    /// "syslog over TLS to host:port".
    pub fn describe(&self) -> String {
        format!(
            "syslog over {} to {}:{}",
            if self.tls { "TLS" } else { "TCP" },
            self.host,
            self.port
        )
    }
}

/// The syslog sink, ready to send.
#[derive(Clone)]
pub struct Syslog {
    target: SyslogTarget,
    /// The HOSTNAME field: the portal's host name.
    hostname: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syslog")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Syslog {
    /// A sink for `target`; over TLS it trusts the system's roots and the certificates of
    /// `ca_file` (PEM), if given. `hostname` goes into every message.
    pub fn new(
        target: SyslogTarget,
        hostname: &str,
        ca_file: Option<&Path>,
    ) -> Result<Self, String> {
        let tls = if target.tls {
            Some(tokio_rustls::TlsConnector::from(Arc::new(tls_config(
                ca_file,
            )?)))
        } else {
            None
        };
        Ok(Self {
            target,
            hostname: header_field(hostname, 255),
            tls,
        })
    }

    pub fn target(&self) -> &SyslogTarget {
        &self.target
    }

    /// Sends `entries` on a new connection; `Ok` once the receiver closed its side after
    /// reading them all.
    pub async fn send(&self, entries: &[Entry]) -> Result<(), String> {
        let mut payload = Vec::new();
        for entry in entries {
            frame(&mut payload, &message(entry, &self.hostname));
        }
        let address = (self.target.host.as_str(), self.target.port);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| "could not connect: timed out".to_string())?
            .map_err(|e| format!("could not connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => send_and_wait(tcp, &payload).await,
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(self.target.host.clone())
                    .map_err(|e| format!("'{}' is not a TLS server name: {e}", self.target.host))?;
                let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| "the TLS handshake timed out".to_string())?
                    .map_err(|e| format!("the TLS handshake failed: {e}"))?;
                send_and_wait(stream, &payload).await
            }
        }
    }
}

/// Writes `payload`, ends the portal's side and waits for the receiver to close its own.
async fn send_and_wait<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    payload: &[u8],
) -> Result<(), String> {
    let sent = async {
        stream
            .write_all(payload)
            .await
            .map_err(|e| format!("could not send: {e}"))?;
        stream
            .flush()
            .await
            .map_err(|e| format!("could not send: {e}"))?;
        stream
            .shutdown()
            .await
            .map_err(|e| format!("could not end the batch: {e}"))?;
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                // The receiver read everything and closed.
                Ok(0) => return Ok(()),
                // Receivers say nothing; whatever they say is ignored.
                Ok(_) => continue,
                // A TLS receiver may close without its own close_notify: still a close.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => {
                    return Err(format!(
                        "the receiver did not take the batch (the connection ended with: {e})"
                    ));
                }
            }
        }
    };
    tokio::time::timeout(SEND_TIMEOUT, sent).await.map_err(|_| {
        format!(
            "the receiver did not close the connection within {} s of the batch's end (it must read to the end of the stream and close)",
            SEND_TIMEOUT.as_secs()
        )
    })?
}

/// The TLS client set-up: the system's roots (as `rustls-native-certs` reads them) and
/// those of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|e| {
                format!(
                    "the CA file {} has a certificate rustls refuses: {e}",
                    path.display()
                )
            })?;
        }
    }
    if roots.is_empty() {
        return Err(
            "no trusted CA certificates: the system has none, and no CA file is set".into(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The certificates of a PEM file.
pub fn read_ca_file(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// A header field as RFC 5424 allows it: printable US-ASCII without spaces, at most `max`
/// characters, `-` when empty.
fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() { "-".into() } else { field }
}

/// The RFC 5424 message of `entry` (without framing).
pub fn message(entry: &Entry, hostname: &str) -> String {
    let severity = if entry.outcome == "success" { 6 } else { 5 };
    let pri = FACILITY_LOG_AUDIT * 8 + severity;
    let timestamp =
        crate::clock::to_datetime(entry.at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // seq is a number and hash hex: nothing in them needs the SD escapes (", \, ]).
    format!(
        "<{pri}>1 {timestamp} {} portcullis - {} [{SD_ID} seq=\"{}\" hash=\"{}\"] \u{feff}{}",
        header_field(hostname, 255),
        entry.seq,
        entry.seq,
        header_field(&entry.hash, 64),
        entry.json_line()
    )
}

/// Appends `message` framed by octet counting: its length in bytes, a space, the message.
pub fn frame(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let mut e = Entry {
            seq: 42,
            at: 1_765_000_000_123,
            actor: "system".into(),
            actor_ip: String::new(),
            user_agent: String::new(),
            action: "request.submitted".into(),
            target_type: "request".into(),
            target_id: "r-1".into(),
            outcome: "failure".into(),
            details: "{\"company\":\"Ünïcode Ltd\"}".into(),
            prev_hash: crate::audit::GENESIS.into(),
            hash: String::new(),
        };
        e.hash = Entry::compute_hash(&e.prev_hash, &e.canonical());
        e
    }

    #[test]
    fn a_message_is_rfc5424_with_the_seq_as_msgid_and_the_json_line() {
        let e = entry();
        let text = message(&e, "portal.example");
        let expected_head = format!(
            "<109>1 2025-12-06T05:46:40.123Z portal.example portcullis - 42 [audit@32473 seq=\"42\" hash=\"{}\"] \u{feff}",
            e.hash
        );
        assert!(text.starts_with(&expected_head), "{text}");
        let json = text.strip_prefix(&expected_head).unwrap();
        assert_eq!(json, e.json_line());
        let back: Entry = serde_json::from_str(json).unwrap();
        assert_eq!(back, e, "the line is the entry as hashed");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn frames_count_octets_not_characters() {
        let mut out = Vec::new();
        frame(&mut out, "é1");
        frame(&mut out, "ab");
        assert_eq!(out, "3 é12 ab".as_bytes());
    }

    #[test]
    fn targets_are_tcp_or_tls_with_a_host_and_port() {
        assert_eq!(
            SyslogTarget::parse("tls://siem.example:6514").unwrap(),
            SyslogTarget {
                host: "siem.example".into(),
                port: 6514,
                tls: true
            }
        );
        assert!(!SyslogTarget::parse("tcp://127.0.0.1:514").unwrap().tls);
        assert!(
            SyslogTarget::parse("udp://x:514")
                .unwrap_err()
                .contains("udp://")
        );
        assert!(
            SyslogTarget::parse("tcp://x")
                .unwrap_err()
                .contains("no port")
        );
        assert!(
            SyslogTarget::parse("siem:514")
                .unwrap_err()
                .contains("tcp://host:port")
        );
        assert!(
            SyslogTarget::parse("tcp://x:514/path")
                .unwrap_err()
                .contains("path")
        );
        assert_eq!(header_field("a b\tc", 255), "abc");
        assert_eq!(header_field("", 255), "-");
    }
}
