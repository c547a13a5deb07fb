//! Python's aiosmtpd as a real SMTP server for tests, writing what it receives to a
//! maildir, and reading those messages as a mail reader would.

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
        let mut child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
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
