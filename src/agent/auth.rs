//! Bearer tokens with roles. Tokens are secret references resolved at start and on reload; a presented token is
//! compared with every configured one in constant time; no token value ever reaches a log or a response.

use crate::config::{ApiToken, Role};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (recorded as the actor of acknowledgements), or "local" without tokens.
    pub name: String,
    pub role: Role,
}

pub struct ResolvedToken {
    pub name: String,
    pub role: Role,
    secret: SecretString,
}

impl std::fmt::Debug for ResolvedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, {})", self.name, self.role.as_str())
    }
}

/// The configured tokens, resolved.
#[derive(Debug, Default)]
pub struct Tokens {
    list: Vec<ResolvedToken>,
}

/// Why the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token, or not a known one: 401.
    Unauthenticated,
    /// A valid token whose role may not do this: 403.
    Forbidden,
}

impl Tokens {
    /// Resolve every token reference; errors name the token and the reference, never a value.
    pub async fn resolve(tokens: &[ApiToken], timeout: Duration) -> Result<Tokens, String> {
        let mut list = Vec::with_capacity(tokens.len());
        for t in tokens {
            let secret = t
                .token
                .resolve(timeout)
                .await
                .map_err(|e| format!("token `{}` ({}): {e}", t.name, t.token))?;
            if secret.expose_secret().trim().len() < 16 {
                return Err(format!(
                    "token `{}` ({}) is shorter than 16 characters: use a long random value, e.g. `openssl rand -hex 32`",
                    t.name, t.token
                ));
            }
            list.push(ResolvedToken {
                name: t.name.clone(),
                role: t.role,
                secret,
            });
        }
        Ok(Tokens { list })
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The caller an `Authorization` header value identifies. Without configured tokens (allowed on loopback
    /// only) everyone is a local operator.
    pub fn identify(&self, authorization: Option<&[u8]>) -> Result<Caller, Denied> {
        if self.list.is_empty() {
            return Ok(Caller {
                name: "local".into(),
                role: Role::Operator,
            });
        }
        let presented = authorization
            .and_then(|h| {
                let h = trim_ascii(h);
                (h.len() > 7 && h[..7].eq_ignore_ascii_case(b"bearer "))
                    .then(|| trim_ascii(&h[7..]))
            })
            .ok_or(Denied::Unauthenticated)?;
        // Compare with every token (no early exit), so timing says nothing about which one nearly matched.
        let mut found: Option<&ResolvedToken> = None;
        for t in &self.list {
            let eq: bool = t.secret.expose_secret().as_bytes().ct_eq(presented).into();
            if eq && found.is_none() {
                found = Some(t);
            }
        }
        found
            .map(|t| Caller {
                name: t.name.clone(),
                role: t.role,
            })
            .ok_or(Denied::Unauthenticated)
    }

    /// As [`Tokens::identify`], then require `need`.
    pub fn authorize(&self, authorization: Option<&[u8]>, need: Role) -> Result<Caller, Denied> {
        let caller = self.identify(authorization)?;
        if caller.role >= need {
            Ok(caller)
        } else {
            Err(Denied::Forbidden)
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Listening beyond loopback needs tokens: refuse otherwise (at start-up and on reload).
pub fn check_exposure(listen: SocketAddr, tokens: &Tokens) -> Result<(), String> {
    if !listen.ip().is_loopback() && tokens.is_empty() {
        return Err(format!(
            "refusing to listen on {listen} without any [[agent.token]]: anyone who can reach it could read the \
             state and trigger probes. Add tokens (role = \"viewer\" / \"operator\") or listen on 127.0.0.1"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            list: vec![
                ResolvedToken {
                    name: "wall".into(),
                    role: Role::Viewer,
                    secret: SecretString::from("viewer-token-0123456789".to_string()),
                },
                ResolvedToken {
                    name: "oncall".into(),
                    role: Role::Operator,
                    secret: SecretString::from("operator-token-0123456789".to_string()),
                },
            ],
        }
    }

    #[test]
    fn roles_and_refusals() {
        let t = tokens();
        assert_eq!(
            t.authorize(None, Role::Viewer),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            t.authorize(Some(b"Bearer nope"), Role::Viewer),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            t.authorize(Some(b"Basic viewer-token-0123456789"), Role::Viewer),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(
            t.authorize(Some(b"Bearer viewer-token-0123456789"), Role::Viewer)
                .unwrap()
                .name,
            "wall"
        );
        assert_eq!(
            t.authorize(Some(b"bearer viewer-token-0123456789"), Role::Operator),
            Err(Denied::Forbidden)
        );
        assert_eq!(
            t.authorize(Some(b"Bearer operator-token-0123456789 "), Role::Operator)
                .unwrap()
                .role,
            Role::Operator
        );
        assert!(format!("{:?}", t).contains("wall") && !format!("{:?}", t).contains("0123"));
    }

    #[test]
    fn exposure_needs_tokens() {
        let none = Tokens::default();
        assert!(check_exposure("127.0.0.1:9477".parse().unwrap(), &none).is_ok());
        assert!(check_exposure("[::1]:9477".parse().unwrap(), &none).is_ok());
        assert!(check_exposure("0.0.0.0:9477".parse().unwrap(), &none).is_err());
        assert!(check_exposure("0.0.0.0:9477".parse().unwrap(), &tokens()).is_ok());
    }
}
