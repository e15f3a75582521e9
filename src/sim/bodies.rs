//! Exact SFMC response bodies (shared/sfmc-auth.md section 2). Field order matches the documented bodies.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub const DOC_URL: &str =
    "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm";

/// A JSON response with a body given as text, so that field order and spelling are exactly as documented.
pub fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn s(v: &str) -> String {
    serde_json::Value::String(v.to_string()).to_string()
}

/// 401 for a bad client id or secret (also what an expired or revoked secret gives).
pub fn invalid_client() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"invalid_client","error_description":"Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled.","error_uri":"https://developer.salesforce.com/docs"}"#.to_string(),
    )
}

/// 401 with the docs' wording for a client id that is not an installed package's.
pub fn invalid_client_id() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"invalid_client","error_description":"Invalid client ID. Use the client ID in Marketing Cloud Installed Packages.","error_uri":"https://developer.salesforce.com/docs"}"#.to_string(),
    )
}

/// 401 for an account_id (MID) that is not a business unit the package reaches (`unknown_mid = "reject"`).
/// [I]: no public source shows this body; see docs/fidelity.md.
pub fn unknown_account_id() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        r#"{"error":"unauthorized_client","error_description":"The client is not authorized for the requested account_id.","error_uri":"https://developer.salesforce.com/docs"}"#.to_string(),
    )
}

/// 403 errorcode 40002: a token issued by another stack or tenant.
pub fn invalid_on_this_endpoint() -> Response {
    json(
        StatusCode::FORBIDDEN,
        format!(
            r#"{{"documentation":"{DOC_URL}","errorcode":40002,"message":"Authorization token invalid on this endpoint"}}"#
        ),
    )
}

pub fn unsupported_grant_type() -> Response {
    json(
        StatusCode::BAD_REQUEST,
        r#"{"error":"unsupported_grant_type","error_description":"Use \"authorization_code\" or \"refresh_token\" or \"client_credentials\" or \"urn:ietf:params:oauth:grant-type:jwt-bearer\" as the grant_type.","error_uri":"https://developer.salesforce.com/docs"}"#.to_string(),
    )
}

/// 400 for a body that is not what the endpoint needs ([I]: SFMC-style wording).
pub fn invalid_request(description: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        format!(
            r#"{{"error":"invalid_request","error_description":{},"error_uri":"https://developer.salesforce.com/docs"}}"#,
            s(description)
        ),
    )
}

/// 400 for authorization_code / refresh_token grants, which the simulator never issues codes for ([I]).
pub fn invalid_grant() -> Response {
    json(
        StatusCode::BAD_REQUEST,
        r#"{"error":"invalid_grant","error_description":"The provided authorization grant is invalid, expired or revoked.","error_uri":"https://developer.salesforce.com/docs"}"#.to_string(),
    )
}

/// 401 "Not Authorized" (REST calls with a missing/invalid/expired token, and other token-endpoint auth failures).
pub fn not_authorized(with_www_authenticate: bool) -> Response {
    let mut r = json(
        StatusCode::UNAUTHORIZED,
        format!(r#"{{"documentation":"{DOC_URL}","errorcode":0,"message":"Not Authorized"}}"#),
    );
    if with_www_authenticate {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="example.com", error="invalid_token""#),
        );
    }
    r
}

/// 401 errorcode 40004: a token in the URL is rejected ([C] code; [I] wording).
pub fn token_in_url() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        format!(
            r#"{{"documentation":"{DOC_URL}","errorcode":40004,"message":"Access token in the URL is not supported. Pass it in the Authorization header."}}"#
        ),
    )
}

/// 403 errorcode 40003: a token in the body is rejected ([C] code; [I] wording).
pub fn token_in_body() -> Response {
    json(
        StatusCode::FORBIDDEN,
        format!(
            r#"{{"documentation":"{DOC_URL}","errorcode":40003,"message":"Access token in the request body is not supported. Pass it in the Authorization header."}}"#
        ),
    )
}

/// 403 for a token without the scope a route needs.
pub fn insufficient_privileges() -> Response {
    json(
        StatusCode::FORBIDDEN,
        format!(
            r#"{{"message":"Insufficient privileges to complete this action.","errorcode":20002,"documentation":"{DOC_URL}"}}"#
        ),
    )
}

pub(super) fn with_retry_after(mut r: Response, secs: u32) -> Response {
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

pub fn rate_limited(retry_after: u32) -> Response {
    with_retry_after(
        json(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                r#"{{"message":"Rate limit exceeded","errorcode":50100,"retryAfter":{retry_after},"documentation":"{DOC_URL}"}}"#
            ),
        ),
        retry_after,
    )
}

/// 429 errorcode 50200: requests blocked for a while.
pub fn blocked(retry_after: u32) -> Response {
    with_retry_after(
        json(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                r#"{{"message":"Your requests are temporarily blocked.","errorcode":50200,"retryAfter":{retry_after},"documentation":"{DOC_URL}"}}"#
            ),
        ),
        retry_after,
    )
}

pub fn unavailable(retry_after: u32) -> Response {
    with_retry_after(
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                r#"{{"message":"Service Unavailable","errorcode":50300,"retryAfter":{retry_after},"documentation":"{DOC_URL}"}}"#
            ),
        ),
        retry_after,
    )
}

/// What a `timeout` fault finally sends once `hang` has passed (a gateway giving up).
pub fn gateway_timeout() -> Response {
    json(
        StatusCode::GATEWAY_TIMEOUT,
        format!(r#"{{"message":"Gateway Timeout","errorcode":50400,"documentation":"{DOC_URL}"}}"#),
    )
}

/// 200 with a truncated JSON document.
pub fn malformed_json() -> Response {
    json(
        StatusCode::OK,
        r#"{"access_token":"eyJhbGciOiJIUzI1NiIsImtpZCI6IjQiLCJ2ZXIiOiIxIiwidHlwIjoiSldUIn0","token_type":"Bea"#
            .to_string(),
    )
}

/// 200 with a 2 MiB body (valid JSON, so only a body cap stops it).
pub fn huge_body() -> Response {
    let pad = "A".repeat(2 * 1024 * 1024);
    json(
        StatusCode::OK,
        format!(r#"{{"access_token":"{pad}","token_type":"Bearer","expires_in":1079}}"#),
    )
}

/// Admin (Setup) errors.
pub fn admin_error(status: StatusCode, error: &str, message: &str) -> Response {
    json(
        status,
        format!(r#"{{"error":{},"message":{}}}"#, s(error), s(message)),
    )
}

pub fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        format!(r#"{{"documentation":"{DOC_URL}","errorcode":404,"message":"Not Found"}}"#),
    )
}
