//! Python's aiosmtpd as a real SMTP server for tests, writing what it receives to a
//! maildir, and reading those messages as a mail reader would. Like a real server it refuses
//! some recipients: for good (550) when the address starts with `refuse`, for now (451) when
//! it starts with `later`; it logs every recipient it was asked to take.

/// The sink's handler: aiosmtpd's Mailbox, refusing some recipients and logging each.
const HANDLER: &str = r#"
import os
from aiosmtpd.handlers import Mailbox

class Handler(Mailbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with open(os.environ["SMTP_SINK_RCPT_LOG"], "a") as log:
            log.write(address + "\n")
        local = address.split("@")[0].lower()
        if local.startswith("refuse"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("later"):
            return "451 4.3.0 <%s>: Temporarily unavailable, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"
"#;

/// Python's aiosmtpd as a local SMTP server, writing what it receives to a maildir.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the sink; `None` (after a loud SKIPPED) when aiosmtpd is missing outside CI.
    pub fn start() -> Option<Self> {
        let available = std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0") {
                panic!("aiosmtpd is required in CI (scripts/setup.sh installs it)");
            }
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED the SMTP delivery test: python3 -m aiosmtpd is not available (run scripts/setup.sh test).\n"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let maildir = tempfile::tempdir().expect("maildir");
        std::fs::write(maildir.path().join("portcullis_sink.py"), HANDLER).expect("handler");
        let mut child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "portcullis_sink.Handler"])
            .arg(maildir.path().join("mail"))
            .env("PYTHONPATH", maildir.path())
            .env("SMTP_SINK_RCPT_LOG", maildir.path().join("rcpt.log"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self {
                    child,
                    port,
                    maildir,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start listening on {port}");
    }

    /// The first message `matches` accepts, decoded, waiting up to 20 s for it.
    pub async fn wait_for(&self, matches: impl Fn(&str) -> bool) -> Option<String> {
        for _ in 0..200 {
            if let Some(found) = self
                .messages()
                .into_iter()
                .map(|m| decode_quoted_printable(&m))
                .find(|m| matches(m))
            {
                return Some(found);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        None
    }

    /// The messages received so far, decoded, that `matches` accepts.
    pub fn decoded(&self, matches: impl Fn(&str) -> bool) -> Vec<String> {
        self.messages()
            .into_iter()
            .map(|m| decode_quoted_printable(&m))
            .filter(|m| matches(m))
            .collect()
    }

    /// How many times the server was asked to take mail for `address` (refused or not).
    pub fn recipient_attempts(&self, address: &str) -> usize {
        std::fs::read_to_string(self.maildir.path().join("rcpt.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.eq_ignore_ascii_case(address))
            .count()
    }

    /// The messages received so far, raw.
    pub fn messages(&self) -> Vec<String> {
        let mut found = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.path().join("mail").join(sub)) {
                for entry in entries.flatten() {
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        found.push(text);
                    }
                }
            }
        }
        found
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of a message (what follows the headers).
pub fn body(message: &str) -> &str {
    message
        .split_once("\r\n\r\n")
        .or_else(|| message.split_once("\n\n"))
        .map_or(message, |(_, body)| body)
}

/// Undoes quoted-printable soft line breaks and `=XX` escapes, as a mail reader would.
pub fn decode_quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
