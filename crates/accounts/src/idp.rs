//! Trusted identity providers (AX-2.3): citizens and staff arrive with a signed JWT (EdDSA,
//! ES256 or RS256) from a configured issuer. The signature, issuer, audience and expiry are
//! checked against our own clock; `alg: none` and unknown keys never verify.
//!
//! A citizen token identifies a person by an identity-code claim and is verified on every
//! request (no account, no session row). A staff token names an account by a claim (default
//! `email`); its first use opens a session row keyed by the token's hash, so that closing the
//! account or ending a right stops it exactly like a password session (AC-11).

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rekisteri_core::{PersonalIdentityCode, TemporaryCodesAllowed};
use serde_json::Value;
use time::OffsetDateTime;

use crate::AccountsError;

/// Who an identity provider vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpKind {
    Citizen,
    Staff,
}

/// One public key of an issuer.
#[derive(Clone)]
pub struct TrustedKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

impl TrustedKey {
    /// A key from its PEM (SPKI) text; `algorithm` is `EdDSA`, `ES256` or `RS256`.
    pub fn from_pem(algorithm: &str, pem: &str, kid: Option<String>) -> Result<Self, String> {
        let (algorithm, key) = match algorithm {
            "EdDSA" => (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem.as_bytes())),
            "ES256" => (Algorithm::ES256, DecodingKey::from_ec_pem(pem.as_bytes())),
            "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_bytes())),
            other => return Err(format!("unsupported algorithm '{other}' (EdDSA, ES256 or RS256)")),
        };
        let key = key.map_err(|e| format!("not a {algorithm:?} public key in PEM: {e}"))?;
        Ok(Self { kid, algorithm, key })
    }
}

/// A configured identity provider.
#[derive(Clone)]
pub struct IdentityProvider {
    pub name: String,
    pub kind: IdpKind,
    pub issuer: String,
    pub audience: String,
    pub keys: Vec<TrustedKey>,
    /// Citizens: the claim holding the identity code.
    pub identity_code_claim: String,
    /// Staff: the claim naming the account (its e-mail address).
    pub account_claim: String,
    /// `amr` values (RFC 8176) that count as strong authentication, e.g. `sc` (smart card).
    pub strong_methods: Vec<String>,
    /// Citizens: the longest lifetime (`exp - iat`) a token may claim. A citizen token is
    /// checked on every request and never revoked, so a long-lived one stolen from a browser
    /// would work until it expires.
    pub max_token_lifetime: time::Duration,
}

/// The default of [`IdentityProvider::max_token_lifetime`].
pub const DEFAULT_MAX_TOKEN_LIFETIME: time::Duration = time::Duration::hours(1);

impl IdentityProvider {
    /// A provider with the documented defaults for the claims.
    pub fn new(name: &str, kind: IdpKind, issuer: &str, audience: &str, keys: Vec<TrustedKey>) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
            identity_code_claim: "national_identification_number".to_owned(),
            account_claim: "email".to_owned(),
            strong_methods: vec!["sc".to_owned(), "hwk".to_owned()],
            max_token_lifetime: DEFAULT_MAX_TOKEN_LIFETIME,
        }
    }
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub enum Verified {
    Citizen {
        identity_code: PersonalIdentityCode,
        provider: String,
        strong: bool,
    },
    Staff {
        /// The value of the account claim (an e-mail address).
        account: String,
        provider: String,
        strong: bool,
        methods: Vec<String>,
        expires_at: OffsetDateTime,
    },
}

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECONDS: i64 = 60;

/// Whether a bearer token is a JWT rather than one of our opaque session tokens (which have no
/// dots).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Verifies `token` against the configured providers at `now`. Every failure is the same
/// `Unauthenticated`: the caller learns nothing about which check failed (the log does).
pub fn verify(providers: &[IdentityProvider], token: &str, now: OffsetDateTime) -> Result<Verified, AccountsError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| refuse(&format!("header: {e}")))?;
    for provider in providers {
        for key in &provider.keys {
            if key.algorithm != header.alg || (header.kid.is_some() && key.kid.is_some() && header.kid != key.kid) {
                continue;
            }
            let mut validation = Validation::new(key.algorithm);
            validation.set_issuer(&[&provider.issuer]);
            validation.set_audience(&[&provider.audience]);
            // Expiry is checked below against the platform's clock, not the system's.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.required_spec_claims = HashSet::from(["exp".to_owned(), "iss".to_owned(), "aud".to_owned()]);
            let Ok(data) = jsonwebtoken::decode::<Value>(token, &key.key, &validation) else {
                continue;
            };
            return claims_of(provider, &data.claims, now);
        }
    }
    Err(refuse("no configured provider's key verifies the token"))
}

fn refuse(reason: &str) -> AccountsError {
    log::info!("identity provider token refused: {reason}");
    AccountsError::Unauthenticated
}

/// A time claim (RFC 7519 NumericDate), when present: it must be a JSON integer of seconds. A
/// string is refused, not read as a number: a claim this check skipped or read differently from
/// the issuer's libraries would let a token live longer than anyone meant.
fn numeric_date(claims: &Value, name: &str) -> Result<Option<i64>, AccountsError> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| refuse(&format!("{name} is not an integer number"))),
    }
}

fn claims_of(provider: &IdentityProvider, claims: &Value, now: OffsetDateTime) -> Result<Verified, AccountsError> {
    let now_seconds = now.unix_timestamp();
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| refuse("no exp"))?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    if now_seconds > exp.saturating_add(LEEWAY_SECONDS) {
        return Err(refuse("expired"));
    }
    if nbf.is_some_and(|nbf| now_seconds.saturating_add(LEEWAY_SECONDS) < nbf) {
        return Err(refuse("not yet valid"));
    }
    // A token issued in the future could otherwise carry a lifetime that starts later than now.
    if iat.is_some_and(|iat| now_seconds.saturating_add(LEEWAY_SECONDS) < iat) {
        return Err(refuse("issued in the future"));
    }
    let methods: Vec<String> = match &claims["amr"] {
        Value::Array(values) => values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Value::String(one) => vec![one.clone()],
        _ => Vec::new(),
    };
    let strong = methods.iter().any(|m| provider.strong_methods.contains(m));
    match provider.kind {
        IdpKind::Citizen => {
            let iat = iat.ok_or_else(|| refuse("a citizen token without iat"))?;
            if exp.saturating_sub(iat) > provider.max_token_lifetime.whole_seconds() {
                return Err(refuse("a citizen token that lives longer than the provider's maximum"));
            }
            let code = claims[provider.identity_code_claim.as_str()]
                .as_str()
                .ok_or_else(|| refuse("no identity-code claim"))?;
            let identity_code = PersonalIdentityCode::parse(code, TemporaryCodesAllowed::No)
                .map_err(|_| refuse("the identity-code claim is not a valid identity code"))?;
            Ok(Verified::Citizen {
                identity_code,
                provider: provider.name.clone(),
                strong,
            })
        }
        IdpKind::Staff => {
            let account = claims[provider.account_claim.as_str()]
                .as_str()
                .ok_or_else(|| refuse("no account claim"))?
                .to_owned();
            let expires_at = OffsetDateTime::from_unix_timestamp(exp).map_err(|_| refuse("exp out of range"))?;
            Ok(Verified::Staff {
                account,
                provider: provider.name.clone(),
                strong,
                methods,
                expires_at,
            })
        }
    }
}
