//! A real syslog receiver for the audit stream's tests: `server/tests/fixtures/
//! syslog_receiver.py` (Python, RFC 5424 over TCP or TLS, octet-counted framing), started
//! as a child process that writes each message it receives to a file as one line. It can be
//! killed (SIGKILL, mid-batch) and started again on the same port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use services::audit::Entry;

/// The receiver's script.
const SCRIPT: &str = include_str!("../../../tests/fixtures/syslog_receiver.py");

/// The TLS identity a receiver serves with: its certificate chain and key (PEM files).
#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A running (or killed) receiver.
pub struct SyslogReceiver {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    tls: Option<Tls>,
    delay_ms: u64,
}

impl SyslogReceiver {
    /// Starts a receiver on a free port; `tls` serves TLS with that identity; each read of
    /// at most 256 bytes waits `delay_ms` first (0: none).
    pub fn start(tls: Option<Tls>, delay_ms: u64) -> Self {
        let dir = tempfile::tempdir().expect("a directory for the receiver");
        std::fs::write(dir.path().join("syslog_receiver.py"), SCRIPT).expect("the script");
        let mut receiver = Self {
            child: None,
            port: 0,
            dir,
            tls,
            delay_ms,
        };
        receiver.spawn();
        receiver
    }

    fn spawn(&mut self) {
        let port_file = self.dir.path().join("port");
        let _ = std::fs::remove_file(&port_file);
        let mut command = Command::new("python3");
        command
            .arg(self.dir.path().join("syslog_receiver.py"))
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--port-file")
            .arg(&port_file)
            .arg("--out")
            .arg(self.file())
            .arg("--delay-ms")
            .arg(self.delay_ms.to_string())
            .arg("--chunk")
            .arg(if self.delay_ms > 0 { "256" } else { "65536" })
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(tls) = &self.tls {
            command
                .arg("--tls-cert")
                .arg(&tls.cert)
                .arg("--tls-key")
                .arg(&tls.key);
        }
        let child = command.spawn().expect("python3 runs the syslog receiver");
        self.child = Some(child);
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse::<u16>()
            {
                self.port = port;
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the syslog receiver did not start listening");
    }

    /// Where it writes what it receives, a message a line.
    pub fn file(&self) -> PathBuf {
        self.dir.path().join("received.log")
    }

    /// `tcp://127.0.0.1:<port>` or `tls://localhost:<port>` (the test certificates name
    /// localhost).
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("tls://localhost:{}", self.port),
            None => format!("tcp://127.0.0.1:{}", self.port),
        }
    }

    /// Kills it at once (SIGKILL): a batch it was reading is cut off.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, appending to the same file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The lines received so far.
    pub fn lines(&self) -> Vec<String> {
        read_lines(&self.file())
    }

    /// The entries received so far, in the order they came (repeats included), each
    /// parsed from its message alone; panics on a line that is not a well-formed message.
    pub fn entries(&self) -> Vec<Entry> {
        self.lines().iter().map(|l| parse_message(l)).collect()
    }
}

impl Drop for SyslogReceiver {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// An RFC 5424 message of the audit stream: checks its header (PRI, version, app name, the
/// seq as MSGID and in the structured data) and returns the entry of its JSON line.
pub fn parse_message(line: &str) -> Entry {
    assert!(!line.starts_with("MALFORMED"), "the receiver saw: {line}");
    let (head, json) = line
        .split_once(" \u{feff}")
        .unwrap_or_else(|| panic!("no BOM before the message: {line}"));
    let fields: Vec<&str> = head.splitn(7, ' ').collect();
    assert_eq!(fields.len(), 7, "{line}");
    assert!(
        fields[0].starts_with("<110>1") || fields[0].starts_with("<109>1"),
        "facility log audit, version 1: {line}"
    );
    assert_eq!(fields[3], "portcullis", "APP-NAME: {line}");
    let entry: Entry = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(fields[5], entry.seq.to_string(), "MSGID is the seq: {line}");
    assert!(
        fields[6].starts_with(&format!(
            "[audit@32473 seq=\"{}\" hash=\"{}\"]",
            entry.seq, entry.hash
        )),
        "structured data: {line}"
    );
    entry
}
