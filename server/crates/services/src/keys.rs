//! Keys the portal keeps outside its database, each in a file of its own (base64 of 32
//! random bytes), generated with mode 0600 when the file is absent: the credential sealing
//! key ([`crate::vault`]), the key of one-time codes' stored hashes ([`crate::tokens`]) and
//! the audit anchor key ([`crate::audit::anchor`]). Someone who copies or rewrites the
//! database does not get them.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("the key file {path} could not be read or written: {error}")]
    Io { path: String, error: String },
    #[error("the key in {0} is not 32 bytes of base64")]
    Malformed(String),
}

/// 32 random bytes.
pub fn random() -> [u8; 32] {
    let mut key = [0u8; 32];
    fill(&mut key);
    key
}

pub(crate) fn fill(buffer: &mut [u8]) {
    // The system's random source does not fail on Linux once the process runs.
    SystemRandom::new()
        .fill(buffer)
        .unwrap_or_else(|_| unreachable!());
}

/// Reads the key in `path`, creating the file (mode 0600) with a new key when it is absent.
pub fn load_or_create(path: &Path) -> Result<[u8; 32], KeyFileError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| KeyFileError::Io {
        path: shown.clone(),
        error: e.to_string(),
    };
    if !path.exists() {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        write_private(path, STANDARD.encode(random()).as_bytes()).map_err(io)?;
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| KeyFileError::Malformed(shown.clone()))?;
    bytes
        .try_into()
        .map_err(|_| KeyFileError::Malformed(shown.clone()))
}

/// Creates `path` (it must not exist) readable and writable by the owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("some.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), first);
        assert_ne!(first, random());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Malformed(_))
        ));
    }
}
