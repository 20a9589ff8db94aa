//! Who may do what: users with a role, API tokens (stored as hashes only), the roles and the one
//! permission matrix every route and command is checked against (default deny), and the
//! idempotency records that make a repeated request return the first answer.
//!
//! Pure like the rest of the domain: password hashing, token generation and clocks live in the
//! binary; the state keeps only hashes and the instants it was given.

use std::collections::BTreeMap;

use ordo_types::{ChannelCode, Timestamp};
use serde::{Deserialize, Serialize};

/// The roles of the permission matrix (see [`Role::allows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    OpsManager,
    Warehouse,
    Finance,
    CustomerService,
    Integration,
    Viewer,
}

/// What a request or command needs. Each route declares exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read master data, stock, availability, orders and exceptions.
    Read,
    /// Define or change items, locations, channels and order settings.
    MasterData,
    /// Record stock movements (receipts, transfers, counts, adjustments…).
    MoveStock,
    /// Capture orders and record channel payment updates.
    CaptureOrders,
    /// Hold, release (override) and cancel orders; work the exception queue.
    ManageOrders,
    /// Drive orders across the floor: dispatch, pick, pack, ship, deliver.
    Fulfil,
    /// Add users and issue or revoke tokens.
    ManageAccess,
    /// Approve or reject another user's pending change (four-eyes).
    Approve,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Self::Admin,
        Self::OpsManager,
        Self::Warehouse,
        Self::Finance,
        Self::CustomerService,
        Self::Integration,
        Self::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::OpsManager => "ops_manager",
            Self::Warehouse => "warehouse",
            Self::Finance => "finance",
            Self::CustomerService => "customer_service",
            Self::Integration => "integration",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The permission matrix. Anything not listed is denied.
    ///
    /// | role | read | master data | move stock | capture orders | manage orders | fulfil | manage access | approve |
    /// |---|---|---|---|---|---|---|---|---|
    /// | admin | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ |
    /// | ops_manager | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | | ✓ |
    /// | warehouse | ✓ | | ✓ | | | ✓ | | |
    /// | finance | ✓ | | | | | | | ✓ |
    /// | customer_service | ✓ | | | ✓ | ✓ | | | |
    /// | integration | ✓ | | ✓ | ✓ | | ✓ | | |
    /// | viewer | ✓ | | | | | | | |
    pub fn allows(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Self::Admin => true,
            Self::OpsManager => permission != P::ManageAccess,
            Self::Warehouse => matches!(permission, P::Read | P::MoveStock | P::Fulfil),
            Self::Finance => matches!(permission, P::Read | P::Approve),
            Self::Viewer => permission == P::Read,
            Self::CustomerService => matches!(permission, P::Read | P::CaptureOrders | P::ManageOrders),
            Self::Integration => matches!(permission, P::Read | P::MoveStock | P::CaptureOrders | P::Fulfil),
        }
    }
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Self::Read,
        Self::MasterData,
        Self::MoveStock,
        Self::CaptureOrders,
        Self::ManageOrders,
        Self::Fulfil,
        Self::ManageAccess,
        Self::Approve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::MasterData => "master_data",
            Self::MoveStock => "move_stock",
            Self::CaptureOrders => "capture_orders",
            Self::ManageOrders => "manage_orders",
            Self::Fulfil => "fulfil",
            Self::ManageAccess => "manage_access",
            Self::Approve => "approve",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// A PHC string (Argon2id), computed at the edge.
    pub password_hash: String,
    pub created_at: Timestamp,
}

/// An API token as stored: never the token itself, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Short public id, printed beside the token and used to revoke it.
    pub id: String,
    pub user: String,
    pub sha256_hex: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

impl Token {
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessCommand {
    AddUser(User),
    IssueToken(Token),
    RevokeToken {
        id: String,
        at: Timestamp,
    },
    /// A token that sees only these channels' orders: anything of another channel is, to it,
    /// not there (404). One command, so a scoped token never exists unscoped.
    IssueScopedToken {
        token: Token,
        channels: Vec<ChannelCode>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessEvent {
    UserAdded(User),
    TokenIssued(Token),
    TokenRevoked { id: String, at: Timestamp },
    ScopedTokenIssued { token: Token, channels: Vec<ChannelCode> },
}

/// Why an access command was refused, most fundamental first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessRejection {
    #[error("user name must be 1–64 letters, digits, '.', '_', '-' or '@', got {0:?}")]
    BadUserName(String),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("unknown user {0}")]
    UnknownUser(String),
    #[error("a token with id {0} already exists")]
    TokenExists(String),
    #[error("unknown token {0}")]
    UnknownToken(String),
    #[error("token {0} is already revoked")]
    AlreadyRevoked(String),
    #[error("a scoped token needs at least one channel")]
    EmptyScope,
    #[error("unknown channel {0} in the token's scope")]
    UnknownChannel(ChannelCode),
}

/// Users, tokens and idempotency records inside [`crate::State`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Access {
    users: BTreeMap<String, User>,
    tokens: BTreeMap<String, Token>,
    /// Token id → the only channels it sees; a token not here sees every channel.
    scopes: BTreeMap<String, Vec<ChannelCode>>,
    /// Token hash → token id, to authenticate a bearer token with one lookup.
    by_hash: BTreeMap<String, String>,
    idempotency: BTreeMap<(String, String), IdempotencyRecord>,
}

fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

impl Access {
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.values()
    }

    /// The user a live token with this SHA-256 belongs to.
    pub fn authenticate_token(&self, sha256_hex: &str, now: Timestamp) -> Option<(&Token, &User)> {
        let token = self.tokens.get(self.by_hash.get(sha256_hex)?)?;
        if !token.is_live(now) {
            return None;
        }
        Some((token, self.users.get(&token.user)?))
    }

    /// The channels a token is limited to; `None`: every channel.
    pub fn token_scope(&self, token_id: &str) -> Option<&[ChannelCode]> {
        self.scopes.get(token_id).map(Vec::as_slice)
    }

    pub fn idempotency(&self, user: &str, key: &str) -> Option<&IdempotencyRecord> {
        self.idempotency.get(&(user.to_owned(), key.to_owned()))
    }

    pub fn decide(&self, command: &AccessCommand) -> Result<AccessEvent, AccessRejection> {
        match command {
            AccessCommand::AddUser(user) => {
                if !valid_user_name(&user.name) {
                    return Err(AccessRejection::BadUserName(user.name.clone()));
                }
                if self.users.contains_key(&user.name) {
                    return Err(AccessRejection::UserExists(user.name.clone()));
                }
                Ok(AccessEvent::UserAdded(user.clone()))
            }
            AccessCommand::IssueToken(token) => {
                self.check_new_token(token)?;
                Ok(AccessEvent::TokenIssued(token.clone()))
            }
            AccessCommand::IssueScopedToken { token, channels } => {
                self.check_new_token(token)?;
                if channels.is_empty() {
                    return Err(AccessRejection::EmptyScope);
                }
                let mut channels = channels.clone();
                channels.sort();
                channels.dedup();
                Ok(AccessEvent::ScopedTokenIssued { token: token.clone(), channels })
            }
            AccessCommand::RevokeToken { id, at } => {
                let token = self.tokens.get(id).ok_or_else(|| AccessRejection::UnknownToken(id.clone()))?;
                if token.revoked_at.is_some() {
                    return Err(AccessRejection::AlreadyRevoked(id.clone()));
                }
                Ok(AccessEvent::TokenRevoked { id: id.clone(), at: *at })
            }
        }
    }

    fn check_new_token(&self, token: &Token) -> Result<(), AccessRejection> {
        if !self.users.contains_key(&token.user) {
            return Err(AccessRejection::UnknownUser(token.user.clone()));
        }
        if self.tokens.contains_key(&token.id) || self.by_hash.contains_key(&token.sha256_hex) {
            return Err(AccessRejection::TokenExists(token.id.clone()));
        }
        Ok(())
    }

    pub fn apply(&mut self, event: &AccessEvent) {
        match event {
            AccessEvent::ScopedTokenIssued { token, channels } => {
                self.scopes.insert(token.id.clone(), channels.clone());
                self.apply(&AccessEvent::TokenIssued(token.clone()));
            }
            AccessEvent::UserAdded(u) => {
                self.users.insert(u.name.clone(), u.clone());
            }
            AccessEvent::TokenIssued(t) => {
                self.by_hash.insert(t.sha256_hex.clone(), t.id.clone());
                self.tokens.insert(t.id.clone(), t.clone());
            }
            AccessEvent::TokenRevoked { id, at } => {
                if let Some(t) = self.tokens.get_mut(id) {
                    t.revoked_at = Some(*at);
                }
            }
        }
    }

    pub(crate) fn remember(&mut self, record: IdempotencyRecord) {
        self.idempotency.insert((record.user.clone(), record.key.clone()), record);
    }
}

/// Through which door a change came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Api,
    Cli,
    Connector,
    System,
}

/// Who made a change, as the audit trail records it with the change's journal row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub actor: String,
    /// `None` for local command-line use (the operator of the machine).
    pub role: Option<Role>,
    pub source: Source,
    pub request_id: String,
}

/// What a request under an `Idempotency-Key` did, kept so a repeat gets the identical answer.
/// Recorded in the same journal event as the effect, so there is no effect without its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub user: String,
    pub key: String,
    /// SHA-256 of the request (method, path and body), to tell a repeat from a different request.
    pub request_sha256_hex: String,
    /// The response status and body the first request got.
    pub status: u16,
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_denies_by_default_and_only_admins_manage_access() {
        for role in Role::ALL {
            assert!(role.allows(Permission::Read), "{role:?} reads");
            assert_eq!(role.allows(Permission::ManageAccess), role == Role::Admin);
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(!Role::Viewer.allows(Permission::CaptureOrders));
        assert!(!Role::Finance.allows(Permission::MoveStock));
        assert!(Role::Warehouse.allows(Permission::Fulfil));
        assert!(!Role::Warehouse.allows(Permission::ManageOrders));
        assert!(Role::CustomerService.allows(Permission::ManageOrders));
        assert!(!Role::Integration.allows(Permission::MasterData));
        let granted: usize = Role::ALL.iter().map(|r| Permission::ALL.iter().filter(|p| r.allows(**p)).count()).sum();
        assert_eq!(granted, 8 + 7 + 3 + 2 + 3 + 4 + 1, "the documented table");
    }

    fn user(name: &str) -> User {
        User { name: name.into(), role: Role::Viewer, password_hash: "x".into(), created_at: Timestamp::from_millis(0) }
    }

    #[test]
    fn tokens_authenticate_until_revoked_or_expired() {
        let mut a = Access::default();
        a.apply(&a.decide(&AccessCommand::AddUser(user("ann"))).unwrap());
        assert_eq!(a.decide(&AccessCommand::AddUser(user("ann"))), Err(AccessRejection::UserExists("ann".into())));
        assert!(matches!(a.decide(&AccessCommand::AddUser(user("a b"))), Err(AccessRejection::BadUserName(_))));
        let token = Token {
            id: "t1".into(),
            user: "ann".into(),
            sha256_hex: "ab".into(),
            created_at: Timestamp::from_millis(0),
            expires_at: Some(Timestamp::from_millis(100)),
            revoked_at: None,
        };
        a.apply(&a.decide(&AccessCommand::IssueToken(token)).unwrap());
        assert_eq!(a.authenticate_token("ab", Timestamp::from_millis(5)).map(|(_, u)| u.name.as_str()), Some("ann"));
        assert!(a.authenticate_token("ab", Timestamp::from_millis(100)).is_none(), "expired");
        assert!(a.authenticate_token("cd", Timestamp::from_millis(5)).is_none(), "unknown");
        let revoke = AccessCommand::RevokeToken { id: "t1".into(), at: Timestamp::from_millis(6) };
        a.apply(&a.decide(&revoke).unwrap());
        assert!(a.authenticate_token("ab", Timestamp::from_millis(7)).is_none(), "revoked");
        assert_eq!(a.decide(&revoke), Err(AccessRejection::AlreadyRevoked("t1".into())));
    }
}
