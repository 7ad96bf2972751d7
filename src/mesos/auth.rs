//! Authentication towards the masters (behaviour reference §5.4): HTTP Basic from
//! `mesosCredentials`, or DC/OS IAM from `IAMConfigFile`.
//!
//! IAM: an RS256 JWT with the claims `uid` and `exp = now + 1 h`, signed with the service
//! account's `private_key`, is POSTed as `{"uid": ..., "token": <jwt>}` to `login_endpoint`; the
//! reply's `{"token": ...}` goes out as `Authorization: token=<token>`. Unlike the original,
//! which logged in before every poll, the login token is cached until shortly before its own
//! `exp` (read from the token when it is a JWT, else kept 5 minutes), and dropped when a master
//! answers 401 so the next request logs in again. Signing uses `ring` (already in the build for
//! TLS). Secrets never appear in errors or logs.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use parking_lot::Mutex;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

use crate::config::{Config, ConfigError, MesosAuth};

/// Lifetime of the JWT we sign for the login request (the original's `exp = now + 1 h`).
const JWT_LIFETIME: Duration = Duration::from_secs(3600);
/// How long a login token whose expiry cannot be read is reused.
const OPAQUE_TOKEN_TTL: Duration = Duration::from_secs(300);
/// A token is renewed this long before it expires (at most half its remaining life).
const RENEW_MARGIN: Duration = Duration::from_secs(60);
/// Largest login reply read.
const MAX_LOGIN_REPLY: u64 = 64 * 1024;

/// Why an IAM login failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The login endpoint could not be reached or did not answer in time.
    #[error("IAM authentication failed: POST {url}: {reason}")]
    Transport {
        /// `login_endpoint`.
        url: String,
        /// The client's error.
        reason: String,
    },
    /// The login endpoint answered with a status other than 200.
    #[error("IAM authentication failed: POST {url}: HTTP status {status}")]
    Status {
        /// `login_endpoint`.
        url: String,
        /// The status.
        status: u16,
    },
    /// The reply was not `{"token": "..."}`.
    #[error("IAM authentication failed: POST {url}: reply has no token ({reason})")]
    BadReply {
        /// `login_endpoint`.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Signing the JWT failed.
    #[error("IAM authentication failed: signing the login JWT failed")]
    Sign,
}

/// A login token and when to stop using it.
#[derive(Clone)]
struct Token {
    header: String,
    renew_at: SystemTime,
}

/// IAM login state: the service account and the cached login token.
pub struct Iam {
    uid: String,
    key: RsaKeyPair,
    login_endpoint: String,
    token: Mutex<Option<Token>>,
    logins: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam")
            .field("uid", &self.uid)
            .field("login_endpoint", &self.login_endpoint)
            .finish_non_exhaustive()
    }
}

/// How requests to the masters authenticate.
#[derive(Debug, Default)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Basic ...`.
    Basic(String),
    /// DC/OS IAM login token.
    Iam(Box<Iam>),
}

/// `Basic base64(principal:secret)` (RFC 7617).
pub fn basic_header(principal: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{principal}:{secret}")))
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Parses a PEM RSA private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
pub fn parse_rsa_key(pem: &str) -> Result<RsaKeyPair, String> {
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "private_key is not a PEM private key".to_string())?;
    let parsed = match &key {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err("private_key is not an RSA key (RS256 needs RSA)".into()),
    };
    parsed.map_err(|e| format!("private_key is not a usable RSA key ({e})"))
}

/// Builds the RS256 login JWT `{"uid": uid, "exp": now + 1 h}`.
pub fn login_jwt(key: &RsaKeyPair, uid: &str, now: SystemTime) -> Result<String, AuthError> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "uid": uid,
        "exp": unix_secs(now + JWT_LIFETIME),
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| AuthError::Sign)?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// When to renew a login token: before its JWT `exp` if it has one, else after 5 minutes.
fn renew_at(token: &str, now: SystemTime) -> SystemTime {
    let exp = token
        .split('.')
        .nth(1)
        .filter(|_| token.split('.').count() == 3)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("exp").and_then(serde_json::Value::as_u64));
    // An `exp` past what SystemTime can hold counts as unreadable.
    match exp.and_then(|e| UNIX_EPOCH.checked_add(Duration::from_secs(e))) {
        Some(exp) => {
            let left = exp.duration_since(now).unwrap_or_default();
            exp - RENEW_MARGIN.min(left / 2)
        }
        None => now + OPAQUE_TOKEN_TTL,
    }
}

impl Iam {
    /// From the `IAMConfigFile` at `path`.
    pub fn load(path: &Path) -> Result<Iam, ConfigError> {
        let iam = crate::config::read_iam_config(path)?;
        let key =
            parse_rsa_key(&iam.private_key).map_err(|reason| ConfigError::InvalidIamFile {
                path: path.to_path_buf(),
                reason,
            })?;
        Ok(Iam {
            uid: iam.uid,
            key,
            login_endpoint: iam.login_endpoint,
            token: Mutex::new(None),
            logins: Default::default(),
        })
    }

    /// Number of logins made so far.
    pub fn logins(&self) -> u64 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets the cached token (a master answered 401).
    pub fn invalidate(&self) {
        *self.token.lock() = None;
    }

    /// The `Authorization` value: the cached token, or a fresh login.
    pub fn header(&self, agent: &ureq::Agent) -> Result<String, AuthError> {
        let now = SystemTime::now();
        if let Some(t) = self.token.lock().as_ref()
            && now < t.renew_at
        {
            return Ok(t.header.clone());
        }
        let token = self.login(agent, now)?;
        let header = format!("token={token}");
        *self.token.lock() = Some(Token {
            header: header.clone(),
            renew_at: renew_at(&token, now),
        });
        Ok(header)
    }

    /// One login; the agent's timeouts (`stateTimeoutSeconds`) bound it.
    fn login(&self, agent: &ureq::Agent, now: SystemTime) -> Result<String, AuthError> {
        use std::io::Read;
        let url = self.login_endpoint.clone();
        let jwt = login_jwt(&self.key, &self.uid, now)?;
        let body = serde_json::json!({"uid": self.uid, "token": jwt}).to_string();
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let resp = agent
            .post(&url)
            .header("User-Agent", "Mesos-DNS")
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .map_err(|e| AuthError::Transport {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(AuthError::Status { url, status });
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_with_config()
            .limit(MAX_LOGIN_REPLY)
            .reader()
            .take(MAX_LOGIN_REPLY)
            .read_to_end(&mut bytes)
            .map_err(|e| AuthError::Transport {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let bad = |reason: &str| AuthError::BadReply {
            url: url.clone(),
            reason: reason.to_owned(),
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad("not JSON"))?;
        match v.get("token").and_then(serde_json::Value::as_str) {
            Some(t) if !t.is_empty() && !t.contains(['\r', '\n']) => Ok(t.to_owned()),
            _ => Err(bad("no \"token\" string")),
        }
    }
}

impl Auth {
    /// The authentication configured in `config` (reads and checks the IAM file).
    pub fn from_config(config: &Config) -> Result<Auth, ConfigError> {
        Ok(match config.mesos_authentication {
            MesosAuth::None => Auth::None,
            MesosAuth::Basic => Auth::Basic(basic_header(
                &config.mesos_credentials.principal,
                &config.mesos_credentials.secret,
            )),
            MesosAuth::Iam => match &config.iam_config_file {
                Some(p) => Auth::Iam(Box::new(Iam::load(p)?)),
                None => return Err(ConfigError::MissingIamFile),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_rfc7617_base64() {
        assert_eq!(
            basic_header("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic_header("a", "b"), "Basic YTpi");
        assert_eq!(basic_header("ab", "c"), "Basic YWI6Yw==");
    }

    fn jwt_with_exp(exp: u64) -> String {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let p = URL_SAFE_NO_PAD.encode(format!(r#"{{"uid":"x","exp":{exp}}}"#));
        format!("{h}.{p}.c2ln")
    }

    #[test]
    fn token_renewal_follows_the_jwt_exp_or_five_minutes() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        // A 5-day DC/OS token: renewed one minute before it expires.
        let exp = 1_000_000 + 5 * 86400;
        assert_eq!(
            renew_at(&jwt_with_exp(exp), now),
            UNIX_EPOCH + Duration::from_secs(exp - 60)
        );
        // A short-lived one: at half its remaining life.
        assert_eq!(
            renew_at(&jwt_with_exp(1_000_040), now),
            UNIX_EPOCH + Duration::from_secs(1_000_020)
        );
        // Already expired: renew at once.
        assert!(renew_at(&jwt_with_exp(10), now) <= now);
        // Opaque: five minutes.
        assert_eq!(renew_at("opaque-token", now), now + OPAQUE_TOKEN_TTL);
        // An absurd exp does not overflow.
        assert_eq!(
            renew_at(&jwt_with_exp(u64::MAX), now),
            now + OPAQUE_TOKEN_TTL
        );
    }

    #[test]
    fn non_rsa_or_garbage_keys_are_rejected() {
        assert!(parse_rsa_key("nope").is_err());
        let ec = rcgen::KeyPair::generate().expect("ec key").serialize_pem();
        let e = parse_rsa_key(&ec).expect_err("EC is not RSA");
        assert!(e.contains("RSA"), "{e}");
    }
}
