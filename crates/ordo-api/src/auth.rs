//! Credentials at the edge: Argon2id password hashes, random API tokens stored only as their
//! SHA-256, and the caller a request authenticates as. The domain keeps hashes, never secrets.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use ordo_domain::access::{Permission, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hex of the SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex; runs twice per request (token and idempotency fingerprint), so no `format!`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// `bytes` random bytes as hex (request ids, session ids, token parts).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex(&buf)
}

/// An Argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode as a salt");
    Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashes any password").to_string()
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A new API token: `(public id, the token to hand out once, its SHA-256 to store)`.
pub fn new_token() -> (String, String, String) {
    let id = random_hex(6);
    let token = format!("ordo_{id}_{}", random_hex(24));
    let hash = sha256_hex(token.as_bytes());
    (id, token, hash)
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub role: Role,
    pub token_id: String,
    /// The only channels this caller sees (a scoped token); `None`: every channel.
    pub channels: Option<Vec<ordo_types::ChannelCode>>,
}

impl Caller {
    pub fn may(&self, permission: Permission) -> bool {
        self.role.allows(permission)
    }

    /// Whether records of `channel` exist for this caller; outside its scope they answer 404.
    pub fn sees(&self, channel: &ordo_types::ChannelCode) -> bool {
        self.channels.as_ref().is_none_or(|scope| scope.contains(channel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash_password("correct horse"), h, "salted");
    }

    #[test]
    fn sha256_hex_matches_the_fips_vector() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(random_hex(4).len(), 8);
    }

    #[test]
    fn tokens_are_random_and_only_their_hash_is_kept() {
        let (id, token, hash) = new_token();
        assert!(token.starts_with(&format!("ordo_{id}_")));
        assert_eq!(hash, sha256_hex(token.as_bytes()));
        assert_eq!(hash.len(), 64);
        assert_ne!(new_token().1, token);
    }
}
