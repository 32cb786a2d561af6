//! Single sign-on with OpenID Connect: the authorization code flow with PKCE (S256), `state`
//! and `nonce`, the provider found by discovery, the ID token's signature checked against the
//! provider's JWKS (RS256 or ES256; `none` and HMAC are refused), its issuer, audience, expiry
//! and nonce checked, and the user's groups mapped to a role.
//! <https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth>
//!
//! HTTP to the provider (discovery, JWKS, the token endpoint) goes through ureq with rustls;
//! callers run [`Client::discover`] and [`Client::finish`] off the async runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::scope::Role;
use crate::{base64, secret};

/// `auth.oidc`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcOptions {
    /// The provider's issuer URL; `/.well-known/openid-configuration` is read from it.
    pub issuer_url: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// Its secret, or `${ENV_VAR}` naming the environment variable holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// A file holding the secret (first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// Where the provider sends the browser back (`.../api/v1/auth/oidc/callback`); empty:
    /// `server.external_url` + that path, or without one the address the browser used.
    #[serde(default)]
    pub redirect_url: String,
    /// Scopes asked for; `openid` is always among them.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim naming the user (`preferred_username`, `email`, `sub`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim listing the user's groups.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Group → role; a user gets the highest role any of their groups maps to.
    #[serde(default)]
    pub role_mapping: BTreeMap<String, Role>,
    /// The role of a user none of whose groups is mapped; none: such a user is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<Role>,
    /// The login page's button text.
    #[serde(default = "default_label")]
    pub label: String,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_label() -> String {
    "Single sign-on".into()
}

impl OidcOptions {
    /// The client secret, from the file or the environment map.
    pub fn resolve_secret(&self, env: &BTreeMap<String, String>) -> Result<Option<String>> {
        match (&self.client_secret, &self.client_secret_file) {
            (Some(_), Some(_)) => {
                Err(Error::config("auth.oidc", "at most one of client_secret and client_secret_file"))
            }
            (None, None) => Ok(None),
            (Some(s), None) => {
                match s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                    Some(var) => env.get(var).cloned().map(Some).ok_or_else(|| {
                        Error::config("auth.oidc.client_secret", format!("the environment has no {var}"))
                    }),
                    None => Ok(Some(s.clone())),
                }
            }
            (None, Some(f)) => {
                std::fs::read_to_string(f).map(|s| Some(s.lines().next().unwrap_or("").to_string())).map_err(|e| {
                    Error::config("auth.oidc.client_secret_file", format!("cannot read {}: {e}", f.display()))
                })
            }
        }
    }

    /// The role `groups` grant, or `None`.
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        let rank = |r: &Role| match r {
            Role::Viewer => 0,
            Role::Editor => 1,
            Role::Admin => 2,
        };
        groups.iter().filter_map(|g| self.role_mapping.get(g)).max_by_key(|r| rank(r)).copied().or(self.default_role)
    }
}

/// What a login in progress remembers between the redirect to the provider and the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The `state` sent, which the callback must return.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Where to go after the login (a path on this server).
    pub next: String,
    /// The redirect URI sent, which the token request must repeat.
    pub redirect_url: String,
    /// When it was started (ms); it expires after ten minutes.
    pub started: i64,
}

/// A signed-in user, as the provider vouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user name (from `username_claim`).
    pub username: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// The role the groups map to.
    pub role: Role,
}

/// The provider's endpoints, from discovery.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A relying party: this server at one provider.
pub struct Client {
    opts: OidcOptions,
    secret: Option<String>,
    endpoints: Discovery,
    keys: RwLock<Vec<Value>>,
    http: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("issuer", &self.endpoints.issuer)
            .field("client_id", &self.opts.client_id)
            .finish()
    }
}

fn fail(message: impl Into<String>) -> Error {
    Error::config("auth.oidc", message.into())
}

impl Client {
    /// Reads the provider's discovery document and keys. Blocking.
    pub fn discover(opts: OidcOptions, secret: Option<String>) -> Result<Client> {
        let http: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().into();
        let url = format!("{}/.well-known/openid-configuration", opts.issuer_url.trim_end_matches('/'));
        let endpoints: Discovery = get_json(&http, &url)
            .and_then(|v| serde_json::from_value(v).map_err(|e| fail(format!("discovery document at {url}: {e}"))))?;
        if endpoints.issuer.trim_end_matches('/') != opts.issuer_url.trim_end_matches('/') {
            return Err(fail(format!(
                "the provider says its issuer is {:?}, not {:?}",
                endpoints.issuer, opts.issuer_url
            )));
        }
        let c = Client { opts, secret, endpoints, keys: RwLock::new(Vec::new()), http };
        c.refresh_keys()?;
        Ok(c)
    }

    /// The options in force.
    pub fn options(&self) -> &OidcOptions {
        &self.opts
    }

    fn refresh_keys(&self) -> Result<()> {
        let jwks = get_json(&self.http, &self.endpoints.jwks_uri)?;
        let keys = jwks["keys"].as_array().cloned().ok_or_else(|| fail("the JWKS has no keys"))?;
        *self.keys.write() = keys;
        Ok(())
    }

    /// Starts a login: the URL to send the browser to, and what to remember until it returns.
    /// `redirect_url` is this server's callback, as the provider must send the browser back.
    pub fn start(&self, next: &str, redirect_url: &str, now: i64) -> (String, Pending) {
        let pending = Pending {
            state: secret::new_session_secret(),
            nonce: secret::new_session_secret(),
            verifier: base64::encode_url(&secret::random_bytes::<32>()),
            next: next.to_string(),
            redirect_url: redirect_url.to_string(),
            started: now,
        };
        let challenge = base64::encode_url(&Sha256::digest(pending.verifier.as_bytes()));
        let mut scopes: Vec<&str> = self.opts.scopes.iter().map(String::as_str).collect();
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.opts.client_id)
            .append_pair("redirect_uri", &pending.redirect_url)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let sep = if self.endpoints.authorization_endpoint.contains('?') { '&' } else { '?' };
        (format!("{}{sep}{query}", self.endpoints.authorization_endpoint), pending)
    }

    /// Finishes a login: trades `code` for tokens and checks the ID token. Blocking.
    pub fn finish(&self, pending: &Pending, code: &str, now: i64) -> Result<Identity> {
        if now - pending.started > 10 * 60 * 1000 {
            return Err(fail("the login took more than ten minutes; start again"));
        }
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", &pending.redirect_url)
            .append_pair("code_verifier", &pending.verifier)
            .append_pair("client_id", &self.opts.client_id);
        let mut req =
            self.http.post(&self.endpoints.token_endpoint).header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(s) = &self.secret {
            // client_secret_basic, the method every provider supports (RFC 6749 2.3.1).
            let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&self.opts.client_id), enc(s));
            req = req.header("Authorization", format!("Basic {}", base64::encode(pair.as_bytes())));
        }
        let mut res = req.send(form.finish()).map_err(|e| fail(format!("token request: {e}")))?;
        let body: Value = res.body_mut().read_json().map_err(|e| fail(format!("token response: {e}")))?;
        let id_token = body["id_token"].as_str().ok_or_else(|| fail("the token response has no id_token"))?;
        let claims = self.verify(id_token, &pending.nonce, now)?;
        let username = claims[self.opts.username_claim.as_str()]
            .as_str()
            .filter(|u| !u.is_empty())
            .or_else(|| claims["sub"].as_str())
            .ok_or_else(|| fail(format!("the ID token has no {} claim", self.opts.username_claim)))?
            .to_string();
        let groups: Vec<String> = match &claims[self.opts.groups_claim.as_str()] {
            Value::Array(a) => a.iter().filter_map(|g| g.as_str().map(String::from)).collect(),
            Value::String(g) => vec![g.clone()],
            _ => Vec::new(),
        };
        let role = self.opts.role_for(&groups).ok_or_else(|| {
            fail(format!("{username}'s groups {groups:?} map to no role, and auth.oidc.default_role is not set"))
        })?;
        Ok(Identity { username, groups, role })
    }

    /// Checks an ID token's signature and claims; returns the claims.
    fn verify(&self, token: &str, nonce: &str, now: i64) -> Result<Value> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(fail("the ID token is not a JWS"));
        };
        let json = |part: &str| -> Result<Value> {
            base64::decode(part)
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| fail("the ID token does not decode"))
        };
        let header = json(h)?;
        let claims = json(p)?;
        let sig = base64::decode(s).ok_or_else(|| fail("the ID token's signature does not decode"))?;
        let alg = header["alg"].as_str().unwrap_or("");
        let kid = header["kid"].as_str();
        let signed = format!("{h}.{p}");
        let find = |keys: &[Value]| keys.iter().find(|k| kid.is_none_or(|id| k["kid"].as_str() == Some(id))).cloned();
        let key = match find(&self.keys.read()) {
            Some(k) => k,
            // The provider rotated its keys: read them again, once.
            None => {
                self.refresh_keys()?;
                find(&self.keys.read()).ok_or_else(|| fail(format!("no key {kid:?} in the provider's JWKS")))?
            }
        };
        verify_signature(alg, &key, signed.as_bytes(), &sig)?;
        if claims["iss"].as_str().map(|i| i.trim_end_matches('/')) != Some(self.endpoints.issuer.trim_end_matches('/'))
        {
            return Err(fail("the ID token's issuer is not the provider"));
        }
        let aud_ok = match &claims["aud"] {
            Value::String(a) => *a == self.opts.client_id,
            Value::Array(a) => a.iter().any(|x| x.as_str() == Some(self.opts.client_id.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(fail("the ID token is not meant for this client (aud)"));
        }
        let exp = claims["exp"].as_i64().ok_or_else(|| fail("the ID token has no exp"))?;
        // A minute of leeway for clocks that differ.
        if exp * 1000 + 60_000 < now {
            return Err(fail("the ID token has expired"));
        }
        if claims["nonce"].as_str() != Some(nonce) {
            return Err(fail("the ID token's nonce is not this login's"));
        }
        Ok(claims)
    }
}

fn get_json(http: &ureq::Agent, url: &str) -> Result<Value> {
    let mut res = http.get(url).call().map_err(|e| fail(format!("GET {url}: {e}")))?;
    res.body_mut().read_json().map_err(|e| fail(format!("GET {url}: {e}")))
}

/// Checks a JWS signature with a JWK: RS256 (RSA PKCS#1 v1.5) or ES256 (ECDSA P-256).
fn verify_signature(alg: &str, jwk: &Value, message: &[u8], sig: &[u8]) -> Result<()> {
    use ring::signature;
    let field =
        |name: &str| jwk[name].as_str().and_then(base64::decode).ok_or_else(|| fail(format!("the JWK has no {name}")));
    let ok = match (alg, jwk["kty"].as_str()) {
        ("RS256", Some("RSA")) => {
            let key = signature::RsaPublicKeyComponents { n: field("n")?, e: field("e")? };
            key.verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig).is_ok()
        }
        ("ES256", Some("EC")) => {
            let mut point = vec![4u8];
            point.extend(field("x")?);
            point.extend(field("y")?);
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).verify(message, sig).is_ok()
        }
        (other, kty) => {
            return Err(fail(format!("ID tokens signed with {other:?} ({kty:?} key) are not accepted; RS256 or ES256")))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(fail("the ID token's signature does not verify"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> OidcOptions {
        serde_yaml_ng::from_str(
            "issuer_url: http://idp\nclient_id: telltale\nrole_mapping: {ops: admin, dev: editor, all: viewer}\n",
        )
        .unwrap()
    }

    #[test]
    fn groups_map_to_the_highest_role_or_the_default() {
        let mut o = opts();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(o.role_for(&g(&["all", "dev"])), Some(Role::Editor));
        assert_eq!(o.role_for(&g(&["dev", "ops"])), Some(Role::Admin));
        assert_eq!(o.role_for(&g(&["sales"])), None, "refused without a default role");
        o.default_role = Some(Role::Viewer);
        assert_eq!(o.role_for(&g(&["sales"])), Some(Role::Viewer));
        assert_eq!(o.scopes, ["openid", "profile", "email"]);
        assert_eq!(o.username_claim, "preferred_username");
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused() {
        let jwk = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(verify_signature("none", &jwk, b"x", b"").is_err());
        assert!(verify_signature("HS256", &jwk, b"x", b"").is_err());
        let rsa = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert!(verify_signature("RS256", &rsa, b"x", b"bad").is_err());
    }
}
