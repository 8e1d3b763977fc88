//! STS `AssumeRole` (RPC style, API `2015-04-01`) at `/`, signed with RPC V2 HMAC-SHA1.
//!
//! Parameters come from the query string and, for POST, also from a form body. The
//! issued keys (`STS.…`) are remembered so invocations can be signed with them, with
//! their `SecurityToken`, until they expire. Error codes follow the RPC gateway's naming
//! (`SignatureDoesNotMatch`, `InvalidAccessKeyId.NotFound`, …); the exact codes and
//! statuses of the real STS are unconfirmed.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use fcsink_sign::{rpc_signature, rpc_string_to_sign};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::auth::{MAX_CLOCK_SKEW, borrowed, query_pairs};
use crate::credentials::Key;
use crate::error::{ApiError, ErrorShape};
use crate::request_id::RequestId;
use crate::state::Shared;

/// The shortest session AssumeRole grants, in seconds.
pub const MIN_DURATION_SECS: u64 = 900;
/// The longest session AssumeRole grants here (a role's maximum can be at most 12 h).
pub const MAX_DURATION_SECS: u64 = 43_200;
/// The session length when `DurationSeconds` is not given.
pub const DEFAULT_DURATION_SECS: u64 = 3_600;

/// `GET /` or `POST /`: the STS RPC endpoint.
pub async fn handle(
    State(state): State<Arc<Shared>>,
    Extension(RequestId(id)): Extension<RequestId>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    state.sts_requests.fetch_add(1, Ordering::SeqCst);
    let mut params = query_pairs(uri.query().unwrap_or(""));
    if method == Method::POST {
        params.extend(query_pairs(&String::from_utf8_lossy(&body)));
    }
    match assume_role(&state, &id, method.as_str(), &params, SystemTime::now()) {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.with_shape(ErrorShape::Sts).into_response_with_id(&id),
    }
}

fn assume_role(
    state: &Shared,
    id: &str,
    method: &str,
    params: &[(String, String)],
    now: SystemTime,
) -> Result<serde_json::Value, ApiError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let require = |name: &str| {
        get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("Missing{name}"),
                &format!("{name} is mandatory for this action."),
            )
        })
    };

    if require("Action")? != "AssumeRole" {
        return Err(error(
            StatusCode::NOT_FOUND,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ));
    }
    expect(require("Version")?, "2015-04-01", "Version")?;
    expect(require("SignatureMethod")?, "HMAC-SHA1", "SignatureMethod")?;
    expect(require("SignatureVersion")?, "1.0", "SignatureVersion")?;
    let timestamp = require("Timestamp")?;
    let nonce = require("SignatureNonce")?;
    let access_key_id = require("AccessKeyId")?;
    let signature = require("Signature")?;

    let sent =
        OffsetDateTime::parse(timestamp, &Rfc3339).map_err(|_| invalid("Timestamp", timestamp))?;
    let skew = (OffsetDateTime::from(now) - sent).unsigned_abs();
    if skew > MAX_CLOCK_SKEW {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let key = state.credentials.get(access_key_id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    })?;
    let pairs = borrowed(params);
    if rpc_signature(&key.secret, method, &pairs) != signature {
        let string_to_sign = rpc_string_to_sign(method, &pairs);
        return Err(error(
            StatusCode::BAD_REQUEST,
            "SignatureDoesNotMatch",
            &format!(
                "Specified signature is not matched with our calculation. \
                 server string to sign is:{string_to_sign}"
            ),
        ));
    }
    if let Some(token) = &key.security_token {
        let expired = key.expires_at.is_some_and(|at| now >= at);
        if get("SecurityToken") != Some(token.as_str()) || expired {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "InvalidSecurityToken",
                "The security token is missing, wrong or expired.",
            ));
        }
    }
    let fresh_nonce = state
        .sts_nonces
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(nonce.to_owned());
    if !fresh_nonce {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }

    let role_arn = require("RoleArn")?;
    let (account, role) = role_arn
        .strip_prefix("acs:ram::")
        .and_then(|rest| rest.split_once(":role/"))
        .filter(|(account, role)| {
            !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit()) && !role.is_empty()
        })
        .ok_or_else(|| invalid("RoleArn", role_arn))?;
    let session = require("RoleSessionName")?;
    let session_ok = (2..=64).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'@' | b'_' | b'-'));
    if !session_ok {
        return Err(invalid("RoleSessionName", session));
    }
    let duration = match get("DurationSeconds") {
        None => DEFAULT_DURATION_SECS,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|d| (MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(d))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter.DurationSeconds",
                    &format!(
                        "The Min/Max value of DurationSeconds is {MIN_DURATION_SECS}/\
                         {MAX_DURATION_SECS} seconds, got '{v}'."
                    ),
                )
            })?,
    };

    let lifetime = state.sts_lifetime.unwrap_or(Duration::from_secs(duration));
    let expires_at = now + lifetime;
    let new_id = format!("STS.{}", random_text(28));
    let secret = random_text(44);
    let token = format!("CAIS{}", random_text(120));
    state.credentials.add_temporary(
        new_id.clone(),
        Key {
            secret: secret.clone(),
            security_token: Some(token.clone()),
            expires_at: Some(expires_at),
        },
    );
    state.assume_role_calls.fetch_add(1, Ordering::SeqCst);
    let role_id: u64 = rand::rng().random_range(10u64.pow(16)..10u64.pow(17));
    Ok(json!({
        "RequestId": id,
        "AssumedRoleUser": {
            "Arn": format!("acs:ram::{account}:role/{}/{session}", role.to_ascii_lowercase()),
            "AssumedRoleId": format!("3{role_id}:{session}"),
        },
        "Credentials": {
            "AccessKeyId": new_id,
            "AccessKeySecret": secret,
            "SecurityToken": token,
            "Expiration": expiration(expires_at),
        },
    }))
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC, as STS writes `Expiration`.
pub fn expiration(at: SystemTime) -> String {
    OffsetDateTime::from(at)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

fn expect(value: &str, wanted: &str, name: &str) -> Result<(), ApiError> {
    if value == wanted {
        Ok(())
    } else {
        Err(invalid(name, value))
    }
}

fn invalid(name: &str, value: &str) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        &format!("InvalidParameter.{name}"),
        &format!("The parameter {name} has an invalid value '{value}'."),
    )
}

fn error(status: StatusCode, code: &str, message: &str) -> ApiError {
    ApiError::new(status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_format() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645);
        assert_eq!(expiration(at), "2024-01-02T03:04:05Z");
    }
}
