//! Sessions for people (the dashboard): `POST /api/v1/login` checks the Argon2id password and
//! sets an `HttpOnly`, `SameSite=Strict` session cookie; every state-changing request that
//! authenticates by that cookie must repeat the session's CSRF token in `X-CSRF-Token`. Failed
//! logins are rate-limited per user name. Sessions live in this process's memory (a restart
//! signs everyone out); integrations use bearer tokens instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{Caller, random_hex, sha256_hex};

/// How long a session lasts without being used.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);
/// Failed logins allowed per user name within [`LOGIN_WINDOW`] before 429.
pub const LOGIN_ATTEMPTS: usize = 5;
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

pub const SESSION_COOKIE: &str = "ordo_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

struct Session {
    caller: Caller,
    csrf: String,
    last_used: Instant,
}

#[derive(Default)]
pub(crate) struct Sessions {
    /// By the SHA-256 of the session id (the id itself is only in the cookie).
    live: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Sessions {
    /// Seconds until `user` may try again, when too many logins failed lately.
    pub(crate) fn throttled(&self, user: &str) -> Option<u64> {
        let mut failures = self.failures.lock().expect("login failures lock");
        let recent = failures.entry(user.to_owned()).or_default();
        recent.retain(|t| t.elapsed() < LOGIN_WINDOW);
        (recent.len() >= LOGIN_ATTEMPTS).then(|| (LOGIN_WINDOW.saturating_sub(recent[0].elapsed())).as_secs().max(1))
    }

    pub(crate) fn failed(&self, user: &str) {
        self.failures.lock().expect("login failures lock").entry(user.to_owned()).or_default().push(Instant::now());
    }

    /// Opens a session: `(session id for the cookie, CSRF token)`.
    pub(crate) fn open(&self, caller: Caller) -> (String, String) {
        self.failures.lock().expect("login failures lock").remove(&caller.user);
        let id = random_hex(32);
        let csrf = random_hex(24);
        let session = Session { caller, csrf: csrf.clone(), last_used: Instant::now() };
        self.live.lock().expect("sessions lock").insert(sha256_hex(id.as_bytes()), session);
        (id, csrf)
    }

    /// The caller of a live session; for a state-changing request the CSRF token must match.
    pub(crate) fn caller(&self, id: &str, csrf: Option<&str>, changes_state: bool) -> Result<Caller, SessionError> {
        let mut live = self.live.lock().expect("sessions lock");
        let key = sha256_hex(id.as_bytes());
        let session = live.get_mut(&key).ok_or(SessionError::Unknown)?;
        if session.last_used.elapsed() > SESSION_IDLE {
            live.remove(&key);
            return Err(SessionError::Unknown);
        }
        if changes_state && csrf != Some(session.csrf.as_str()) {
            return Err(SessionError::Csrf);
        }
        session.last_used = Instant::now();
        Ok(session.caller.clone())
    }

    pub(crate) fn close(&self, id: &str) -> bool {
        self.live.lock().expect("sessions lock").remove(&sha256_hex(id.as_bytes())).is_some()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SessionError {
    Unknown,
    Csrf,
}

/// The session id in a `Cookie` header, if any.
pub(crate) fn session_cookie(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .map(str::trim)
        .find_map(|c| c.strip_prefix(SESSION_COOKIE).and_then(|rest| rest.strip_prefix('=')))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use ordo_domain::access::Role;

    use super::*;

    fn ann() -> Caller {
        Caller { user: "ann".into(), role: Role::Viewer, token_id: "session".into(), channels: None }
    }

    #[test]
    fn sessions_need_their_csrf_token_to_change_state_and_close() {
        let s = Sessions::default();
        let (id, csrf) = s.open(ann());
        assert_eq!(s.caller(&id, None, false), Ok(ann()), "reads need no CSRF token");
        assert_eq!(s.caller(&id, None, true), Err(SessionError::Csrf));
        assert_eq!(s.caller(&id, Some("wrong"), true), Err(SessionError::Csrf));
        assert_eq!(s.caller(&id, Some(&csrf), true), Ok(ann()));
        assert_eq!(s.caller("forged", Some(&csrf), true), Err(SessionError::Unknown));
        assert!(s.close(&id));
        assert_eq!(s.caller(&id, Some(&csrf), false), Err(SessionError::Unknown));
    }

    #[test]
    fn failed_logins_are_throttled_per_user() {
        let s = Sessions::default();
        for _ in 0..LOGIN_ATTEMPTS {
            assert_eq!(s.throttled("ann"), None);
            s.failed("ann");
        }
        assert!(s.throttled("ann").is_some_and(|secs| (1..=60).contains(&secs)));
        assert_eq!(s.throttled("bob"), None, "per user");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(session_cookie("a=1; ordo_session=abc; b=2"), Some("abc"));
        assert_eq!(session_cookie("ordo_session="), None);
        assert_eq!(session_cookie("other=1"), None);
    }
}
