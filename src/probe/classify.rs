//! Turning HTTP answers into outcomes. Pure: status codes, headers and bytes in, classification out.

use crate::model::Outcome;
use serde_json::Value;
use std::time::Duration;

/// Responses larger than this are refused as `bad_response` (SFMC's answers are a few hundred bytes).
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a phase did not succeed. Never carries a secret: bodies of error responses are reduced to their
/// error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub detail: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            http_status: None,
            error: None,
            detail: None,
            retry_after: None,
        }
    }
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    /// Error and detail made safe: known secrets redacted, control and bidi characters escaped. Every failure
    /// leaving the prober passes here (transport error chains quote hosts and server text too).
    pub fn cleaned(mut self) -> Self {
        self.error = crate::sanitize::clean_opt(self.error);
        self.detail = crate::sanitize::clean_opt(self.detail);
        self
    }
}

/// The error fields SFMC services use, read leniently (`message`/`Message`, `errorcode`/`ErrorCode`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorInfo {
    /// OAuth error code: `invalid_client`, `unsupported_grant_type`, ...
    pub error: Option<String>,
    pub description: Option<String>,
    pub message: Option<String>,
    pub code: Option<i64>,
    pub retry_after: Option<RetryAfter>,
}

fn field<'a>(obj: &'a serde_json::Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        // Server text goes on screens, into the database and notifications: known secrets redacted, control and
        // bidi characters shown as visible escapes (`\x1b`), never raw.
        Value::String(s) if !s.trim().is_empty() => {
            Some(truncate(&crate::sanitize::clean(s.trim()), 200))
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A JSON `retryAfter`: an integer of any size (negative counts as 0), a float, or digits in a string.
fn as_retry_after(v: &Value) -> Option<RetryAfter> {
    match v {
        Value::Number(n) => {
            let asked = if let Some(u) = n.as_u64() {
                u as u128
            } else if n.as_i64().is_some() {
                0
            } else {
                // Floats (and integers beyond u64 that serde_json reads as floats): saturate.
                let f = n.as_f64()?;
                if f.is_nan() || f <= 0.0 {
                    0
                } else if f >= u128::MAX as f64 {
                    u128::MAX
                } else {
                    f.ceil() as u128
                }
            };
            Some(RetryAfter::from_secs(asked))
        }
        Value::String(s) => parse_retry_after(Some(s)),
        _ => None,
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

impl ErrorInfo {
    pub fn parse(body: &[u8]) -> ErrorInfo {
        // A stray invalid UTF-8 byte does not hide the error code: read again with it replaced.
        let parsed =
            serde_json::from_slice::<Value>(body).or_else(|e| match std::str::from_utf8(body) {
                Ok(_) => Err(e),
                Err(_) => serde_json::from_str(&String::from_utf8_lossy(body)),
            });
        let Ok(Value::Object(obj)) = parsed else {
            return ErrorInfo::default();
        };
        ErrorInfo {
            error: field(&obj, &["error"]).and_then(as_text),
            description: field(&obj, &["error_description"]).and_then(as_text),
            message: field(&obj, &["message"]).and_then(as_text),
            code: field(&obj, &["errorcode", "error_code"]).and_then(as_int),
            retry_after: field(&obj, &["retryAfter"]).and_then(as_retry_after),
        }
    }

    /// The short error shown in tables: the OAuth code, else the message.
    pub fn headline(&self) -> Option<String> {
        self.error.clone().or_else(|| self.message.clone())
    }

    /// The longer explanation: description and the SFMC error code.
    pub fn detail(&self) -> Option<String> {
        let code = self
            .code
            .filter(|c| *c != 0)
            .map(|c| format!("errorcode {c}"));
        match (self.description.clone(), code) {
            (Some(d), Some(c)) => Some(format!("{d} ({c})")),
            (d, c) => d.or(c),
        }
    }
}

/// The shortest and longest wait an endpoint may ask for: values outside are clamped (and the clamp is named in
/// the probe's detail), so no answer can make the scheduler overflow or stop probing for years.
pub const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(crate::model::MAX_WAIT_SECS);

/// A wait asked for by an endpoint, clamped to [`MIN_RETRY_AFTER`]..=[`MAX_RETRY_AFTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    pub wait: Duration,
    /// What the endpoint asked for (seconds, as sent) when it was outside the range.
    pub clamped_from: Option<u128>,
}

impl RetryAfter {
    pub fn from_secs(asked: u128) -> Self {
        let (min, max) = (
            MIN_RETRY_AFTER.as_secs() as u128,
            MAX_RETRY_AFTER.as_secs() as u128,
        );
        let secs = asked.clamp(min, max);
        Self {
            wait: Duration::from_secs(secs as u64),
            clamped_from: (secs != asked).then_some(asked),
        }
    }
    /// "Retry-After 9000000000000s clamped to 86400s", for the probe's detail.
    pub fn note(&self) -> Option<String> {
        self.clamped_from
            .map(|asked| format!("Retry-After {asked}s clamped to {}s", self.wait.as_secs()))
    }
}

/// Parse a `Retry-After` header value (delta-seconds; HTTP dates are rare from SFMC and treated as absent).
/// Digits beyond any integer type still count as "very long" rather than absent.
pub fn parse_retry_after(value: Option<&str>) -> Option<RetryAfter> {
    let v = value?.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(RetryAfter::from_secs(
        v.parse::<u128>().unwrap_or(u128::MAX),
    ))
}

/// Classify a non-2xx answer. `phase_is_token` distinguishes a refused token request from a refused call.
pub fn classify_error_status(
    status: u16,
    body: &[u8],
    retry_after_header: Option<RetryAfter>,
    phase_is_token: bool,
) -> Failure {
    let info = ErrorInfo::parse(body);
    let outcome = match status {
        401 if phase_is_token => Outcome::AuthRejected,
        401 => Outcome::TokenRejected,
        // The token endpoint answers 400 for bad grant types and malformed requests: the credential setup is wrong.
        400 if phase_is_token => Outcome::AuthRejected,
        403 => Outcome::Forbidden,
        404 => Outcome::NotFound,
        429 => Outcome::RateLimited,
        500..=599 => Outcome::ServerError,
        _ => Outcome::BadResponse,
    };
    let retry_after = retry_after_header
        .or(info.retry_after)
        .filter(|_| matches!(outcome, Outcome::RateLimited | Outcome::ServerError));
    let error = info.headline().or_else(|| {
        // Not JSON, e.g. an HTML error page from a proxy: say so without echoing it.
        (!body.is_empty()).then(|| format!("HTTP {status} with a non-JSON body"))
    });
    let detail = match (info.detail(), retry_after.and_then(|r| r.note())) {
        (Some(d), Some(n)) => Some(format!("{d}; {n}")),
        (d, n) => d.or(n),
    };
    Failure {
        outcome,
        http_status: Some(status),
        error,
        detail,
        retry_after: retry_after.map(|r| r.wait),
    }
}

/// A 3xx answer: never followed (a token request must not carry the secret elsewhere). Named with its status and
/// the host the `Location` points to (resolved against the request URL), never the whole target URL.
pub fn classify_redirect(status: u16, location: Option<&str>, request: &url::Url) -> Failure {
    let target = location
        .and_then(|l| request.join(l.trim()).ok())
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        });
    let error = match target {
        Some(host) => format!("redirect ({status}) to {host}: not followed"),
        None => format!("redirect ({status}) without a usable Location: not followed"),
    };
    let mut f = Failure::new(Outcome::BadResponse).with_error(error);
    f.http_status = Some(status);
    f
}

/// A successful token response, validated. The token itself goes straight into a `SecretString` by the caller.
#[derive(Debug)]
pub struct TokenFields {
    pub access_token: zeroize::Zeroizing<String>,
    pub expires_in: Option<u64>,
    pub scope: Option<Vec<String>>,
    pub rest_instance_url: Option<url::Url>,
}

/// Parse a 200 token response. Lenient where SFMC varies (expires_in as string, instance URLs without scheme).
pub fn parse_token_response(body: &[u8]) -> Result<TokenFields, Failure> {
    let bad = |why: &str| {
        let mut f = Failure::new(Outcome::BadResponse).with_error(why.to_string());
        f.http_status = Some(200);
        f
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|_| bad("token response is not valid JSON"))?;
    let Value::Object(obj) = value else {
        return Err(bad("token response is not a JSON object"));
    };
    let token = match field(&obj, &["access_token"]) {
        Some(Value::String(s)) if !s.is_empty() => zeroize::Zeroizing::new(s.clone()),
        _ => return Err(bad("token response lacks access_token")),
    };
    let expires_in = field(&obj, &["expires_in"])
        .and_then(as_int)
        .map(|n| n.max(0) as u64);
    let scope = match field(&obj, &["scope"]) {
        Some(Value::String(s)) => Some(s.split_whitespace().map(crate::sanitize::clean).collect()),
        _ => None,
    };
    let rest_instance_url = match field(&obj, &["rest_instance_url", "instance_url"]) {
        Some(Value::String(s)) => {
            Some(parse_instance_url(s).ok_or_else(|| bad("rest_instance_url is not a URL"))?)
        }
        _ => None,
    };
    Ok(TokenFields {
        access_token: token,
        expires_in,
        scope,
        rest_instance_url,
    })
}

/// Old docs show instance URLs without a scheme; normalise to `https://host/` with a trailing slash.
pub fn parse_instance_url(s: &str) -> Option<url::Url> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("https://{s}")
    };
    let with_slash = if with_scheme.ends_with('/') {
        with_scheme
    } else {
        format!("{with_scheme}/")
    };
    url::Url::parse(&with_slash).ok().filter(|u| u.has_host())
}

/// `organization.id` of a tokenContext answer, as a string (SFMC sends numbers; be lenient).
pub fn token_context_mid(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let org = v.get("organization")?.get("id")?;
    as_text(org)
}

/// Required scopes that the grant lacks, in the order they were required.
pub fn missing_scopes(required: &[String], granted: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !granted.iter().any(|g| g == *r))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVALID_CLIENT: &str = r#"{"error":"invalid_client","error_description":"Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled.","error_uri":"https://developer.salesforce.com/docs"}"#;

    #[test]
    fn table_of_error_answers() {
        let cases: Vec<(u16, &str, bool, Outcome, Option<&str>)> = vec![
            (
                401,
                INVALID_CLIENT,
                true,
                Outcome::AuthRejected,
                Some("invalid_client"),
            ),
            (
                400,
                r#"{"error":"unsupported_grant_type","error_description":"Use ..."}"#,
                true,
                Outcome::AuthRejected,
                Some("unsupported_grant_type"),
            ),
            (
                401,
                r#"{"documentation":"https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm","errorcode":0,"message":"Not Authorized"}"#,
                false,
                Outcome::TokenRejected,
                Some("Not Authorized"),
            ),
            (
                403,
                r#"{"Message":"Authorization token invalid on this endpoint","ErrorCode":40002}"#,
                false,
                Outcome::Forbidden,
                Some("Authorization token invalid on this endpoint"),
            ),
            (
                403,
                r#"{"message":"Insufficient privileges to complete this action.","errorcode":20002}"#,
                false,
                Outcome::Forbidden,
                Some("Insufficient privileges to complete this action."),
            ),
            (
                404,
                "<html>nope</html>",
                true,
                Outcome::NotFound,
                Some("HTTP 404 with a non-JSON body"),
            ),
            (
                429,
                r#"{"message":"Rate limit exceeded","errorcode":50100,"retryAfter":5}"#,
                true,
                Outcome::RateLimited,
                Some("Rate limit exceeded"),
            ),
            (
                503,
                r#"{"message":"Service Unavailable","errorcode":50300}"#,
                false,
                Outcome::ServerError,
                Some("Service Unavailable"),
            ),
            (418, "", false, Outcome::BadResponse, None),
        ];
        for (status, body, token, want, error) in cases {
            let f = classify_error_status(status, body.as_bytes(), None, token);
            assert_eq!(f.outcome, want, "{status} {body}");
            assert_eq!(f.error.as_deref(), error, "{status} {body}");
            assert_eq!(f.http_status, Some(status));
        }
    }

    #[test]
    fn redirects_are_named_with_status_and_target_host() {
        let req = url::Url::parse("https://abc.auth.marketingcloudapis.com/v2/token").unwrap();
        for status in [301, 302, 303, 307, 308] {
            let f = classify_redirect(status, Some("https://other.example/v2/token?x=1"), &req);
            assert_eq!(f.outcome, Outcome::BadResponse);
            assert_eq!(f.http_status, Some(status));
            assert_eq!(
                f.error.as_deref(),
                Some(format!("redirect ({status}) to other.example: not followed").as_str())
            );
        }
        let f = classify_redirect(302, Some("/elsewhere"), &req);
        assert_eq!(
            f.error.as_deref(),
            Some("redirect (302) to abc.auth.marketingcloudapis.com: not followed")
        );
        let f = classify_redirect(301, Some("http://other.example:8080/"), &req);
        assert_eq!(
            f.error.as_deref(),
            Some("redirect (301) to other.example:8080: not followed")
        );
        let f = classify_redirect(307, None, &req);
        assert_eq!(
            f.error.as_deref(),
            Some("redirect (307) without a usable Location: not followed")
        );
    }

    #[test]
    fn retry_after_comes_from_header_then_body() {
        let body = br#"{"message":"Rate limit exceeded","errorcode":50100,"retryAfter":5}"#;
        let f = classify_error_status(429, body, None, true);
        assert_eq!(f.retry_after, Some(Duration::from_secs(5)));
        let f = classify_error_status(429, body, Some(RetryAfter::from_secs(9)), true);
        assert_eq!(f.retry_after, Some(Duration::from_secs(9)));
        assert_eq!(
            parse_retry_after(Some(" 7 ")).map(|r| r.wait),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
    }

    #[test]
    fn giant_and_tiny_retry_after_are_clamped_and_the_clamp_is_named() {
        for header in [
            "9000000000000",
            "18446744073709551615",
            "99999999999999999999999999999999999999999",
        ] {
            let r = parse_retry_after(Some(header)).unwrap();
            assert_eq!(r.wait, MAX_RETRY_AFTER, "{header}");
            let f = classify_error_status(429, b"", Some(r), true);
            assert_eq!(f.retry_after, Some(MAX_RETRY_AFTER));
            let detail = f.detail.unwrap();
            assert!(detail.contains("clamped to 86400s"), "{detail}");
        }
        for body in [
            r#"{"retryAfter":9000000000000}"#,
            r#"{"retryAfter":18446744073709551615}"#,
            r#"{"retryAfter":1e300}"#,
            r#"{"retryAfter":"184467440737095516150"}"#,
        ] {
            let f = classify_error_status(503, body.as_bytes(), None, true);
            assert_eq!(f.retry_after, Some(MAX_RETRY_AFTER), "{body}");
            assert!(f.detail.unwrap().contains("clamped"), "{body}");
        }
        let f = classify_error_status(429, br#"{"retryAfter":-5}"#, None, true);
        assert_eq!(f.retry_after, Some(MIN_RETRY_AFTER));
        assert_eq!(parse_retry_after(Some("0")).unwrap().wait, MIN_RETRY_AFTER);
        assert_eq!(parse_retry_after(Some("-1")), None);
    }

    #[test]
    fn detail_names_description_and_code() {
        let info = ErrorInfo::parse(INVALID_CLIENT.as_bytes());
        assert!(
            info.detail()
                .unwrap()
                .starts_with("Client authentication failed.")
        );
        let info = ErrorInfo::parse(br#"{"message":"x","errorcode":40002}"#);
        assert_eq!(info.detail().as_deref(), Some("errorcode 40002"));
    }

    #[test]
    fn token_response_variants() {
        let t = parse_token_response(
            br#"{"access_token":"abc","token_type":"Bearer","expires_in":1079,"scope":"email_read data_extensions_read","soap_instance_url":"https://mc1.soap.marketingcloudapis.com/","rest_instance_url":"https://mc1.rest.marketingcloudapis.com/"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(1079));
        assert_eq!(t.scope.unwrap(), ["email_read", "data_extensions_read"]);
        assert_eq!(
            t.rest_instance_url.unwrap().as_str(),
            "https://mc1.rest.marketingcloudapis.com/"
        );

        let t = parse_token_response(br#"{"access_token":"abc","expires_in":"1080","rest_instance_url":"mc1.rest.marketingcloudapis.com"}"#).unwrap();
        assert_eq!(t.expires_in, Some(1080));
        assert_eq!(
            t.rest_instance_url.unwrap().as_str(),
            "https://mc1.rest.marketingcloudapis.com/"
        );

        for bad in [
            &b"{\"access_token\":\"abc\""[..],
            b"[]",
            b"{\"token_type\":\"Bearer\"}",
            b"{\"access_token\":\"\"}",
        ] {
            let f = parse_token_response(bad).unwrap_err();
            assert_eq!(f.outcome, Outcome::BadResponse);
        }
    }

    #[test]
    fn mid_and_scopes() {
        assert_eq!(
            token_context_mid(
                br#"{"enterprise":{"id":5100000},"organization":{"id":5100001},"user":{"id":7}}"#
            )
            .as_deref(),
            Some("5100001")
        );
        assert_eq!(
            token_context_mid(br#"{"organization":{"id":"5100002"}}"#).as_deref(),
            Some("5100002")
        );
        assert_eq!(token_context_mid(b"{}"), None);
        let req = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(missing_scopes(&req, &["b".to_string()]), ["a", "c"]);
    }
}
