//! Credentials depot must keep (a BMC's user and password) are sealed with XChaCha20-Poly1305
//! under `DEPOT_SECRET_KEY` before they touch the database: a copy of the database alone does
//! not give them away, and a tampered value fails to open instead of being used.
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;

/// The 32-byte key, from 64 hex digits.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    pub fn parse(hex_digits: &str) -> Result<SecretKey, String> {
        let bytes = hex::decode(hex_digits.trim()).map_err(|_| "must be 64 hex digits".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 64 hex digits (32 bytes)".to_string())?;
        Ok(SecretKey(key))
    }

    /// Seals `plain`: a fresh random nonce and the ciphertext with its tag, hex-encoded.
    pub fn seal(&self, plain: &str) -> String {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, plain.as_bytes())
            .expect("sealing in memory cannot fail");
        format!("{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    /// Opens what [`SecretKey::seal`] made; `None` when it was made under another key or altered.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, body) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher.decrypt(XNonce::from_slice(nonce), body).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::SecretKey;

    #[test]
    fn sealed_values_open_only_under_their_key_and_unaltered() {
        let key = SecretKey::parse(&"ab".repeat(32)).unwrap();
        let sealed = key.seal("root:calvin");
        assert!(!sealed.contains("calvin"));
        assert_ne!(sealed, key.seal("root:calvin"), "a fresh nonce each time");
        assert_eq!(key.open(&sealed).as_deref(), Some("root:calvin"));
        let other = SecretKey::parse(&"cd".repeat(32)).unwrap();
        assert_eq!(other.open(&sealed), None);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(key.open(&String::from_utf8(altered).unwrap()), None);
        assert!(SecretKey::parse("short").is_err());
    }
}
