//! The fallback for orgs that do not let the credentials API return consumer secrets
//! (`enableClientSecretInRestApiAccess` off, as Salesforce's health check recommends): the
//! portal chooses the app's secret itself, deploys it, and keeps it sealed with AES-256-GCM
//! until the contractor reveals it or the link expires, when the ciphertext is destroyed.
//!
//! The key is 32 random bytes from configuration (`CREDENTIAL_KEY_FILE`), generated into the
//! data directory when absent. Each ciphertext is bound to its grant (the grant id is the
//! additional authenticated data), so a sealed secret copied to another grant's row does not
//! open.
//!
//! The sealed copies live in `sealed_secrets`, one per grant ([`sealed_or_new`],
//! [`store_sealed`]); the reveal destroys them once no link can collect them.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use secrecy::{ExposeSecret, SecretString};

const VERSION: &str = "v1:";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the credential key file {path} could not be read or written: {error}")]
    KeyFile { path: String, error: String },
    #[error("the credential key in {0} is not 32 bytes of base64")]
    BadKey(String),
    #[error("a sealed secret did not open (wrong key, another grant's, or damaged)")]
    Unsealable,
}

/// The sealing key. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Vault {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault([key])")
    }
}

impl Vault {
    pub fn from_key(bytes: &[u8; 32]) -> Self {
        // A 32-byte key is always valid for AES-256-GCM.
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).unwrap_or_else(|_| unreachable!());
        Self {
            key: Arc::new(LessSafeKey::new(unbound)),
        }
    }

    /// A vault with a fresh random key (tests, and nothing that must outlive the process).
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        fill(&mut key);
        Self::from_key(&key)
    }

    /// Reads the key file (base64 of 32 bytes), creating it (mode 0600) when it is absent.
    pub fn load_or_create(path: &Path) -> Result<Self, VaultError> {
        match crate::keys::load_or_create(path) {
            Ok(key) => Ok(Self::from_key(&key)),
            Err(crate::keys::KeyFileError::Io { path, error }) => {
                Err(VaultError::KeyFile { path, error })
            }
            Err(crate::keys::KeyFileError::Malformed(path)) => Err(VaultError::BadKey(path)),
        }
    }

    /// Seals `secret` for `grant_id`: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, grant_id: &str, secret: &SecretString) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        fill(&mut nonce);
        let mut buffer = secret.expose_secret().as_bytes().to_vec();
        // Sealing in memory cannot fail for inputs this small.
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(grant_id.as_bytes()),
                &mut buffer,
            )
            .unwrap_or_else(|_| unreachable!());
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        format!("{VERSION}{}", STANDARD.encode(out))
    }

    pub fn open(&self, grant_id: &str, sealed: &str) -> Result<SecretString, VaultError> {
        let raw = sealed
            .strip_prefix(VERSION)
            .and_then(|b| STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or(VaultError::Unsealable)?;
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| VaultError::Unsealable)?;
        let mut buffer = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(grant_id.as_bytes()), &mut buffer)
            .map_err(|_| VaultError::Unsealable)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| VaultError::Unsealable)?;
        Ok(SecretString::from(text))
    }
}

/// A new consumer secret as Salesforce formats them: 64 upper-case hex digits.
pub fn new_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    fill(&mut bytes);
    SecretString::from(hex::encode_upper(bytes))
}

use crate::clock::Clock;
use crate::keys::fill;

/// The secret sealed for `grant_id`, or a new one sealed now (the row is written before
/// the secret is deployed, so a crash in between loses nothing). Used by the proof (an org
/// whose credentials API returns no secrets) and kept until the reveal.
pub(crate) async fn sealed_or_new(
    db: &crate::Database,
    vault: &Vault,
    grant_id: &str,
    clock: &dyn Clock,
) -> Result<SecretString, String> {
    let existing: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(db.pool())
            .await
            .map_err(|e| format!("the sealed secret could not be read: {e}"))?;
    if let Some(sealed) = existing {
        return vault.open(grant_id, &sealed).map_err(|e| e.to_string());
    }
    let secret = new_secret();
    store_sealed(db, vault, grant_id, &secret, clock)
        .await
        .map_err(|e| format!("the chosen secret could not be kept: {e}"))?;
    Ok(secret)
}

/// Seals `secret` as the grant's (replacing any earlier one); returns what it replaced.
pub(crate) async fn store_sealed(
    db: &crate::Database,
    vault: &Vault,
    grant_id: &str,
    secret: &SecretString,
    clock: &dyn Clock,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let previous: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(&mut *tx.tx)
            .await?;
    sqlx::query(
        "INSERT INTO sealed_secrets (grant_id, sealed, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (grant_id) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at",
    )
    .bind(grant_id)
    .bind(vault.seal(grant_id, secret))
    .bind(clock.now_ms())
    .execute(&mut *tx.tx)
    .await?;
    tx.commit().await?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_grant() {
        let vault = Vault::ephemeral();
        let secret = new_secret();
        assert_eq!(secret.expose_secret().len(), 64);
        let sealed = vault.seal("grant-1", &secret);
        assert!(!sealed.contains(secret.expose_secret()));
        assert_eq!(
            vault.open("grant-1", &sealed).unwrap().expose_secret(),
            secret.expose_secret()
        );
        assert!(
            vault.open("grant-2", &sealed).is_err(),
            "bound to its grant"
        );
        assert!(
            Vault::ephemeral().open("grant-1", &sealed).is_err(),
            "bound to its key"
        );
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push('A');
        assert!(vault.open("grant-1", &damaged).is_err() || damaged == sealed);
        assert_ne!(
            vault.seal("grant-1", &secret),
            sealed,
            "a fresh nonce each time"
        );
    }

    #[test]
    fn the_key_file_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credential.key");
        let first = Vault::load_or_create(&path).unwrap();
        let sealed = first.seal("g", &SecretString::from("s".to_string()));
        let again = Vault::load_or_create(&path).unwrap();
        assert_eq!(again.open("g", &sealed).unwrap().expose_secret(), "s");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            Vault::load_or_create(&path),
            Err(VaultError::BadKey(_))
        ));
    }
}
