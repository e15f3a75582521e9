//! The SFMC simulator over real HTTP (reqwest against a loopback server on port 0).

use authwatch::sim::{self, Scenario, SimError, SimServer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const INVALID_CLIENT: &str = r#"{"error":"invalid_client","error_description":"Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled.","error_uri":"https://developer.salesforce.com/docs"}"#;
const UNSUPPORTED_GRANT: &str = r#"{"error":"unsupported_grant_type","error_description":"Use \"authorization_code\" or \"refresh_token\" or \"client_credentials\" or \"urn:ietf:params:oauth:grant-type:jwt-bearer\" as the grant_type.","error_uri":"https://developer.salesforce.com/docs"}"#;
const NOT_AUTHORIZED: &str = r#"{"documentation":"https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm","errorcode":0,"message":"Not Authorized"}"#;
const INSUFFICIENT: &str = r#"{"message":"Insufficient privileges to complete this action.","errorcode":20002,"documentation":"https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm"}"#;

const ID: &str = "5c9e1b7aa0d44f3e8a2b91c7";
const SECRET: &str = "s3cr3t-crm";

fn scenario(extra: &str) -> Scenario {
    let text = format!(
        r#"
[sim]
staging_delay = "1s"
expires_in = 1079
seed = 7

[[client]]
id = "crm-package"
client_id = "{ID}"
secret = "{SECRET}"
scopes = ["data_extensions_read", "email_read", "documents_and_images_read"]
mids = ["5100001", 5100002]
enterprise_id = "5100000"
owner = "Jane Doe"
secret_expires_in_days = 120

[[client]]
id = "limited"
client_id = "limited-id"
secret = "limited-secret"
scopes = []
mids = ["5100009"]
fault = "rate_limited"
retry_after = 7

[[integration]]
name = "crm-sync"
client = "crm-package"
account_id = "5100001"
scopes = ["data_extensions_read", "data_extensions_write"]
business_unit = "NA Retail"
team = "crm-ops"
environment = "prod"
processes = ["Welcome journey", "Nightly DE sync"]
{extra}
"#
    );
    Scenario::from_toml(&text, "test.toml").expect("valid scenario")
}

async fn serve(s: Scenario) -> SimServer {
    sim::start(s, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("start")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn token_raw(srv: &SimServer, body: Value) -> reqwest::Response {
    http()
        .post(format!("{}v2/token", srv.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn token(srv: &SimServer, extra: Value) -> Value {
    let mut body =
        json!({"grant_type": "client_credentials", "client_id": ID, "client_secret": SECRET});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let r = token_raw(srv, body).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn get(srv: &SimServer, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = http().get(format!("{}{path}", srv.base_url()));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn status_and_text(r: reqwest::Response) -> (u16, String) {
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn token_response_has_the_sfmc_shape() {
    let srv = serve(scenario("")).await;
    assert!(srv.base_url().starts_with("http://127.0.0.1:"));
    assert!(srv.base_url().ends_with('/'));
    let t = token(&srv, json!({})).await;
    let access = t["access_token"].as_str().unwrap();
    assert!(!access.is_empty() && access.len() <= 512);
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 1079);
    assert_eq!(
        t["scope"],
        "data_extensions_read email_read documents_and_images_read"
    );
    assert_eq!(t["rest_instance_url"], srv.base_url());
    assert_eq!(t["soap_instance_url"], srv.base_url());
    let t2 = token(&srv, json!({})).await;
    assert_ne!(t2["access_token"], t["access_token"], "tokens are fresh");
    srv.shutdown().await;
}

#[tokio::test]
async fn scope_omitted_empty_and_subset() {
    let srv = serve(scenario("")).await;
    let all = token(&srv, json!({})).await;
    assert_eq!(
        all["scope"],
        "data_extensions_read email_read documents_and_images_read"
    );
    let none = token(&srv, json!({"scope": ""})).await;
    assert_eq!(none["scope"], "");
    let subset = token(
        &srv,
        json!({"scope": "email_read data_extensions_write  data_extensions_read"}),
    )
    .await;
    assert_eq!(subset["scope"], "email_read data_extensions_read");

    // The granted scopes are what the data endpoints check.
    let tok = none["access_token"].as_str().unwrap();
    let r = get(
        &srv,
        "data/v1/customobjectdata/key/Subscribers/rowset",
        Some(tok),
    )
    .await;
    assert_eq!(status_and_text(r).await, (403, INSUFFICIENT.to_string()));
    srv.shutdown().await;
}

#[tokio::test]
async fn account_id_as_string_or_number_and_mismatch_falls_back() {
    let srv = serve(scenario("")).await;
    for (account, want_mid) in [
        (json!("5100002"), 5100002),
        (json!(5100002), 5100002),
        (json!(5100001), 5100001),
        (json!("9999999"), 5100001),
        (json!("not-a-mid"), 5100001),
        (Value::Null, 5100001),
    ] {
        let extra = if account.is_null() {
            json!({})
        } else {
            json!({ "account_id": account })
        };
        let t = token(&srv, extra).await;
        let r = get(&srv, "platform/v1/tokenContext", t["access_token"].as_str()).await;
        assert_eq!(r.status(), 200);
        let ctx: Value = r.json().await.unwrap();
        assert_eq!(ctx["organization"]["id"], want_mid, "account_id {account}");
        assert_eq!(ctx["enterprise"]["id"], 5100000);
        assert!(ctx["user"]["id"].is_u64());
    }
    // Not a string or a number.
    let r = token_raw(
        &srv,
        json!({"grant_type":"client_credentials","client_id":ID,"client_secret":SECRET,"account_id":{"x":1}}),
    )
    .await;
    assert_eq!(r.status(), 400);
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_and_grant_types_give_exact_bodies() {
    let srv = serve(scenario("")).await;
    let cases = [
        (
            json!({"grant_type":"client_credentials","client_id":ID,"client_secret":"wrong"}),
            401,
            INVALID_CLIENT,
        ),
        (
            json!({"grant_type":"client_credentials","client_id":"nope","client_secret":SECRET}),
            401,
            INVALID_CLIENT,
        ),
        (
            json!({"grant_type":"password","client_id":ID,"client_secret":SECRET}),
            400,
            UNSUPPORTED_GRANT,
        ),
    ];
    for (body, status, want) in cases {
        let r = token_raw(&srv, body.clone()).await;
        assert_eq!(
            status_and_text(r).await,
            (status, want.to_string()),
            "{body}"
        );
    }
    // Malformed JSON and missing fields: 400 invalid_request.
    let r = http()
        .post(format!("{}v2/token", srv.base_url()))
        .header("content-type", "application/json")
        .body("{\"grant_type\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    let r = token_raw(
        &srv,
        json!({"grant_type":"client_credentials","client_id":ID}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    srv.shutdown().await;
}

#[tokio::test]
async fn rest_calls_need_a_valid_bearer_token() {
    let srv = serve(scenario("")).await;
    for tok in [None, Some("bogus")] {
        let r = get(&srv, "platform/v1/tokenContext", tok).await;
        assert_eq!(
            r.headers()["www-authenticate"],
            r#"Bearer realm="example.com", error="invalid_token""#
        );
        assert_eq!(status_and_text(r).await, (401, NOT_AUTHORIZED.to_string()));
    }
    let t = token(&srv, json!({})).await;
    let tok = t["access_token"].as_str().unwrap();
    // A token in the URL is rejected with 40004.
    let r = get(
        &srv,
        &format!("platform/v1/tokenContext?access_token={tok}"),
        None,
    )
    .await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorcode"], 40004);

    let r = get(&srv, "platform/v1/endpoints", Some(tok)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["count"], 3);
    let types: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["rest", "soap", "auth"]);
    assert_eq!(v["items"][0]["url"], srv.base_url());
    srv.shutdown().await;
}

#[tokio::test]
async fn data_endpoints_check_scopes() {
    let srv = serve(scenario("")).await;
    let t = token(&srv, json!({})).await;
    let tok = t["access_token"].as_str().unwrap();
    let r = get(
        &srv,
        "data/v1/customobjectdata/key/Subscribers/rowset",
        Some(tok),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = get(&srv, "asset/v1/content/assets", Some(tok)).await;
    assert_eq!(r.status(), 200);
    // The package lacks data_extensions_write.
    let r = http()
        .post(format!(
            "{}hub/v1/dataevents/key:Subscribers/rowset",
            srv.base_url()
        ))
        .bearer_auth(tok)
        .json(&json!([{"keys": {"SubscriberKey": "1"}, "values": {"Name": "A"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_text(r).await, (403, INSUFFICIENT.to_string()));
    srv.shutdown().await;
}

#[tokio::test]
async fn rate_limited_client_gets_429_with_retry_after() {
    let srv = serve(scenario("")).await;
    let r = token_raw(
        &srv,
        json!({"grant_type":"client_credentials","client_id":"limited-id","client_secret":"limited-secret"}),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "Rate limit exceeded");
    assert_eq!(v["errorcode"], 50100);
    assert_eq!(v["retryAfter"], 7);
    srv.shutdown().await;
}

fn fault_scenario(fault: &str) -> Scenario {
    Scenario::from_toml(
        &format!(
            r#"
[sim]
hang = "30s"
[[client]]
id = "c"
client_id = "cid"
secret = "sec"
mids = ["1"]
fault = "{fault}"
"#
        ),
        "fault.toml",
    )
    .unwrap()
}

async fn fault_token(
    srv: &SimServer,
    client: &reqwest::Client,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{}v2/token", srv.base_url()))
        .json(&json!({"grant_type":"client_credentials","client_id":"cid","client_secret":"sec"}))
        .send()
        .await
}

#[tokio::test]
async fn fault_modes() {
    let srv = serve(fault_scenario("server_error")).await;
    let r = fault_token(&srv, &http()).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errorcode"], 50300);
    srv.shutdown().await;

    let srv = serve(fault_scenario("malformed_json")).await;
    let r = fault_token(&srv, &http()).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    srv.shutdown().await;

    let srv = serve(fault_scenario("huge_body")).await;
    let r = fault_token(&srv, &http()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().len() > 1024 * 1024);
    srv.shutdown().await;

    // Timeout: the client's timeout fires first; the request is still recorded; shutdown is not held up.
    let srv = serve(fault_scenario("timeout")).await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let e = fault_token(&srv, &quick).await.unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(srv.token_requests("cid"), 1);
    let pending = tokio::spawn({
        let url = format!("{}v2/token", srv.base_url());
        async move {
            http()
                .post(url)
                .json(&json!({"grant_type":"client_credentials","client_id":"cid","client_secret":"sec"}))
                .send()
                .await
        }
    });
    while srv.token_requests("cid") < 2 {
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    srv.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = pending.await.unwrap().unwrap();
    assert_eq!(r.status(), 504);
}

#[tokio::test]
async fn flakiness_is_reproducible_with_a_seed() {
    let text = r#"
[sim]
seed = 42
[[client]]
id = "c"
client_id = "cid"
secret = "sec"
mids = ["1"]
flaky_401 = 0.5
"#;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let srv = serve(Scenario::from_toml(text, "flaky.toml").unwrap()).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            statuses.push(fault_token(&srv, &http()).await.unwrap().status().as_u16());
        }
        srv.shutdown().await;
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(
        runs[0].contains(&200) && runs[0].contains(&401),
        "{:?}",
        runs[0]
    );
}

#[tokio::test]
async fn staged_secret_rotation_follows_setup_rules() {
    let srv = serve(scenario("")).await;
    let old_token = token(&srv, json!({})).await;
    let staged = srv.generate_secret("crm-package").unwrap();
    assert_ne!(staged, SECRET);
    let with = |secret: &str| json!({"grant_type":"client_credentials","client_id":ID,"client_secret":secret});
    // Before the staging delay: refused; the active one still works.
    let r = token_raw(&srv, with(&staged)).await;
    assert_eq!(status_and_text(r).await, (401, INVALID_CLIENT.to_string()));
    assert_eq!(token_raw(&srv, with(SECRET)).await.status(), 200);
    // A second generation or an activation within the window is refused.
    assert!(matches!(
        srv.generate_secret("crm-package"),
        Err(SimError::Conflict(_))
    ));
    assert!(matches!(
        srv.activate_secret("crm-package"),
        Err(SimError::Conflict(_))
    ));
    assert!(matches!(
        srv.generate_secret("nope"),
        Err(SimError::UnknownClient(_))
    ));

    // The staging delay (1s) is the behaviour under test.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(token_raw(&srv, with(&staged)).await.status(), 200);
    assert_eq!(token_raw(&srv, with(SECRET)).await.status(), 200);

    srv.activate_secret("crm-package").unwrap();
    let r = token_raw(&srv, with(SECRET)).await;
    assert_eq!(status_and_text(r).await, (401, INVALID_CLIENT.to_string()));
    assert_eq!(token_raw(&srv, with(&staged)).await.status(), 200);
    // Tokens issued under the old secret stay valid until they expire.
    let r = get(
        &srv,
        "platform/v1/tokenContext",
        old_token["access_token"].as_str(),
    )
    .await;
    assert_eq!(r.status(), 200);
    // Nothing left to activate.
    assert!(matches!(
        srv.activate_secret("crm-package"),
        Err(SimError::Conflict(_))
    ));
    // The written config carries the new active secret.
    let dir = tempfile::tempdir().unwrap();
    srv.write_config(dir.path(), chrono::Utc::now()).unwrap();
    let written = std::fs::read_to_string(dir.path().join("secrets/crm-package")).unwrap();
    assert_eq!(written, staged);
    srv.shutdown().await;
}

#[tokio::test]
async fn admin_endpoints_mirror_setup() {
    let srv = serve(scenario("")).await;
    let c = http();
    let url = |p: &str| format!("{}admin/clients/{p}", srv.base_url());
    let r = c
        .post(url("crm-package/secrets/generate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let staged = v["staged_secret"].as_str().unwrap().to_string();
    let after =
        chrono::DateTime::parse_from_rfc3339(v["accepted_after"].as_str().unwrap()).unwrap();
    assert!(after > chrono::Utc::now() - chrono::Duration::seconds(2));
    let r = c
        .post(url("crm-package/secrets/generate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "conflict");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("at most one generation")
    );
    let r = c
        .post(url("crm-package/secrets/activate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = c.post(url("ghost/secrets/activate")).send().await.unwrap();
    assert_eq!(r.status(), 404);

    tokio::time::sleep(Duration::from_millis(1050)).await;
    let r = c
        .post(url("crm-package/secrets/activate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = token_raw(
        &srv,
        json!({"grant_type":"client_credentials","client_id":ID,"client_secret":staged}),
    )
    .await;
    assert_eq!(r.status(), 200);

    // Admin calls are not recorded; /admin/requests lists the rest.
    let r = c
        .get(format!("{}admin/requests", srv.base_url()))
        .send()
        .await
        .unwrap();
    let list: Vec<Value> = r.json().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["path"], "/v2/token");
    assert_eq!(list[0]["status"], 200);
    assert_eq!(list[0]["client_id"], ID);
    srv.shutdown().await;
}

#[tokio::test]
async fn timeline_events_apply_when_their_time_comes() {
    let srv = serve(scenario(
        r#"
[[timeline]]
at = "0s"
client = "crm-package"
action = "drop_scope"
scope = "email_read"

[[timeline]]
at = "1s"
client = "crm-package"
action = "revoke_secret"

[[timeline]]
at = "1s"
client = "limited"
action = "clear_fault"
"#,
    ))
    .await;
    let t = token(&srv, json!({})).await;
    assert_eq!(t["scope"], "data_extensions_read documents_and_images_read");
    // Waiting is the behaviour: the events are due at 1s.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    let r = token_raw(
        &srv,
        json!({"grant_type":"client_credentials","client_id":ID,"client_secret":SECRET}),
    )
    .await;
    assert_eq!(status_and_text(r).await, (401, INVALID_CLIENT.to_string()));
    let r = token_raw(
        &srv,
        json!({"grant_type":"client_credentials","client_id":"limited-id","client_secret":"limited-secret"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    srv.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_expires_in() {
    let text = r#"
[sim]
expires_in = 1
[[client]]
id = "c"
client_id = "cid"
secret = "sec"
mids = ["1"]
"#;
    let srv = serve(Scenario::from_toml(text, "short.toml").unwrap()).await;
    let r = fault_token(&srv, &http()).await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 1);
    let tok = v["access_token"].as_str().unwrap();
    assert_eq!(
        get(&srv, "platform/v1/tokenContext", Some(tok))
            .await
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = get(&srv, "platform/v1/tokenContext", Some(tok)).await;
    assert_eq!(status_and_text(r).await, (401, NOT_AUTHORIZED.to_string()));
    srv.shutdown().await;
}

#[tokio::test]
async fn oauth2_form_endpoint_with_basic_or_body_auth() {
    let srv = serve(scenario("")).await;
    let url = format!("{}oauth2/token", srv.base_url());
    let r = http()
        .post(&url)
        .basic_auth(ID, Some(SECRET))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "email_read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "email_read");
    assert_eq!(v["expires_in"], 1079);
    assert!(v.get("rest_instance_url").is_none());

    let r = http()
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", ID),
            ("client_secret", SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let r = http()
        .post(&url)
        .basic_auth(ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert!(v["error_description"].is_string());

    let r = http()
        .post(&url)
        .basic_auth(ID, Some(SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "unsupported_grant_type");
    assert_eq!(srv.token_requests(ID), 4);
    srv.shutdown().await;
}

#[tokio::test]
async fn requests_are_recorded_in_order() {
    let srv = serve(scenario("")).await;
    let t = token(&srv, json!({})).await;
    let _ = token_raw(
        &srv,
        json!({"grant_type":"client_credentials","client_id":ID,"client_secret":"bad"}),
    )
    .await;
    let _ = get(&srv, "platform/v1/tokenContext", t["access_token"].as_str()).await;
    let _ = get(&srv, "no/such/route", None).await;
    let reqs = srv.requests();
    let seen: Vec<(&str, &str, Option<&str>, u16)> = reqs
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.client_id.as_deref(),
                r.status,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "/v2/token", Some(ID), 200),
            ("POST", "/v2/token", Some(ID), 401),
            ("GET", "/platform/v1/tokenContext", Some(ID), 200),
            ("GET", "/no/such/route", None, 404),
        ]
    );
    assert!(reqs.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(srv.token_requests(ID), 2);
    assert_eq!(srv.token_requests("limited-id"), 0);
    srv.shutdown().await;
}

#[tokio::test]
async fn write_config_makes_private_files_and_valid_toml() {
    use std::os::unix::fs::PermissionsExt;
    let srv = serve(scenario("")).await;
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-10T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let path = srv.write_config(dir.path(), now).unwrap();
    assert_eq!(path.file_name().unwrap(), "authwatch.toml");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let secret_file = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("secrets/crm-package");
    assert_eq!(mode(&secret_file), 0o600);
    assert_eq!(std::fs::read_to_string(&secret_file).unwrap(), SECRET);

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(SECRET),
        "the config holds references, not secrets"
    );
    let t: toml::Table = toml::from_str(&text).unwrap();
    let settings = t["settings"].as_table().unwrap();
    assert_eq!(settings["probe_interval"].as_str(), Some("30s"));
    assert_eq!(settings["failure_threshold"].as_integer(), Some(3));
    let creds = t["credential"].as_array().unwrap();
    assert_eq!(creds.len(), 2);
    let c = creds[0].as_table().unwrap();
    assert_eq!(c["id"].as_str(), Some("crm-package"));
    assert_eq!(c["provider"].as_str(), Some("sfmc"));
    assert_eq!(c["auth_url"].as_str(), Some(srv.base_url().as_str()));
    assert_eq!(c["client_id"].as_str(), Some(ID));
    assert_eq!(
        c["client_secret"]["file"].as_str(),
        Some(secret_file.to_str().unwrap())
    );
    assert_eq!(c["secret_expires"].to_string(), "2026-05-10"); // now + 120 days
    assert_eq!(c["owner"].as_str(), Some("Jane Doe"));
    let i = t["integration"].as_array().unwrap()[0].as_table().unwrap();
    assert_eq!(i["credential"].as_str(), Some("crm-package"));
    assert_eq!(i["account_id"].as_str(), Some("5100001"));
    assert_eq!(i["processes"].as_array().unwrap().len(), 2);

    // Writing again replaces the files and keeps them private.
    srv.write_config(dir.path(), now).unwrap();
    assert_eq!(mode(&secret_file), 0o600);
    srv.shutdown().await;
}

#[test]
fn scenario_errors_name_line_and_column() {
    let cases = [
        (
            "[sim]\nstaging_delay = \"5m\"\nbogus = 1\n",
            "x.toml:3:1:",
            "bogus",
        ),
        (
            "[[client]]\nid = \"a\"\nclient_id = \"b\"\nsecret = \"c\"\nmids = [\"1\"]\nfault = \"explode\"\n",
            "x.toml:6:9:",
            "explode",
        ),
        (
            "[[client]]\nid = \"a\"\nclient_id = \"b\"\nsecret = \"c\"\nmids = [\"1\"]\n\n[[timeline]]\nat = \"1s\"\nclient = \"zz\"\naction = \"revoke_secret\"\n",
            "x.toml:9:10:",
            "unknown client \"zz\"",
        ),
        (
            "[[client]]\nid = \"a\"\nclient_id = \"b\"\nsecret = \"c\"\nmids = [\"12x\"]\n",
            "x.toml:5:9:",
            "MID",
        ),
        (
            "[[client]]\nid = \"a\"\nclient_id = \"b\"\nsecret = \"c\"\nmids = [\"1\"]\n[[timeline]]\nat = \"1s\"\nclient = \"a\"\naction = \"drop_scope\"\n",
            "x.toml:9:10:",
            "scope",
        ),
        (
            "[sim]\nstaging_delay = \"5 minutes\"\n",
            "x.toml:2:17:",
            "e.g.",
        ),
        ("[sim]\n", "x.toml:1:1:", "[[client]]"),
        (
            "[[client]]\nid = \"a\"\nclient_id = \"b\"\nsecret = \"c\"\nmids = [\"1\"]\n\n[[integration]]\nname = \"x\"\nclient = \"q\"\n",
            "x.toml:9:10:",
            "uses unknown client \"q\"",
        ),
    ];
    for (text, prefix, needle) in cases {
        let e = Scenario::from_toml(text, "x.toml").unwrap_err().to_string();
        assert!(e.starts_with(prefix), "want {prefix} in {e:?}");
        assert!(e.contains(needle), "want {needle:?} in {e:?}");
    }
}

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.toml");
    std::fs::write(&p, "[[client]]\nid = 3\n").unwrap();
    let e = Scenario::load(&p).unwrap_err().to_string();
    assert!(e.contains("broken.toml:2:"), "{e}");
    let missing = Scenario::load(&dir.path().join("missing.toml")).unwrap_err();
    assert!(matches!(missing, SimError::Read { .. }));
}

#[tokio::test]
async fn demo_scenario_shows_each_kind_of_trouble() {
    let demo = Scenario::demo();
    assert!(demo.integrations.len() >= 10 && demo.clients.len() >= 8);
    let srv = serve(demo.clone()).await;
    let ask = |id: &str| {
        let c = demo.client(id).unwrap();
        json!({"grant_type":"client_credentials","client_id":c.client_id,"client_secret":c.secret})
    };
    // Healthy.
    assert_eq!(token_raw(&srv, ask("crm-connector")).await.status(), 200);
    // Expired secret.
    let r = token_raw(&srv, ask("etl-legacy")).await;
    assert_eq!(status_and_text(r).await, (401, INVALID_CLIENT.to_string()));
    // Rate limited.
    assert_eq!(token_raw(&srv, ask("analytics-export")).await.status(), 429);
    // Missing scope: the integration needs data_extensions_write, the package lacks it.
    let loyalty = demo
        .integrations
        .iter()
        .find(|i| i.client == "loyalty-sync")
        .unwrap();
    assert!(loyalty.scopes.iter().any(|s| s == "data_extensions_write"));
    assert!(
        !demo
            .client("loyalty-sync")
            .unwrap()
            .scopes
            .iter()
            .any(|s| s == "data_extensions_write")
    );
    // Expiry windows and a slow one; a timeline event in the first minute.
    let days: Vec<i64> = demo
        .clients
        .iter()
        .map(|c| c.secret_expires_in_days)
        .collect();
    assert!(days.contains(&5) && days.contains(&20) && days.contains(&-3));
    assert!(
        demo.clients
            .iter()
            .any(|c| c.latency > Duration::from_secs(2))
    );
    assert!(demo.timeline.iter().any(|e| e.at < Duration::from_secs(60)));
    let dir = tempfile::tempdir().unwrap();
    let path = srv.write_config(dir.path(), chrono::Utc::now()).unwrap();
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        t["integration"].as_array().unwrap().len(),
        demo.integrations.len()
    );
    srv.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Fidelity (issue 14): TLS, tenant-shaped URLs, SOAP, the documented faults, the wrong-MID choice.

const TENANT: &str = "https://mc563885gzs27c5t9-63k636ttgm.{kind}.marketingcloudapis.com/";

async fn serve_with(s: Scenario, options: sim::SimOptions) -> SimServer {
    sim::start_with(s, "127.0.0.1:0".parse().unwrap(), options)
        .await
        .expect("start")
}

fn https_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn tls_serves_https_and_writes_its_ca_next_to_the_config() {
    let options = sim::SimOptions {
        tls: true,
        public_url: None,
    };
    let srv = serve_with(scenario(""), options).await;
    assert!(
        srv.base_url().starts_with("https://127.0.0.1:"),
        "{}",
        srv.base_url()
    );
    let ca = srv.ca_pem().expect("a CA when serving TLS").to_string();
    let client = https_trusting(&ca);
    let r = client
        .post(format!("{}v2/token", srv.base_url()))
        .json(&json!({"grant_type":"client_credentials","client_id":ID,"client_secret":SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["rest_instance_url"], srv.base_url());
    // "localhost" is in the certificate too.
    let local = srv.base_url().replace("127.0.0.1", "localhost");
    assert_eq!(
        client
            .get(format!("{local}platform/v1/endpoints"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // A client that does not trust the CA is refused.
    let err = http()
        .get(format!("{}platform/v1/endpoints", srv.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = srv.write_config(dir.path(), chrono::Utc::now()).unwrap();
    let written_ca = path.parent().unwrap().join("ca.pem");
    assert_eq!(std::fs::read_to_string(&written_ca).unwrap(), ca);
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        t["settings"]["ca_file"].as_str(),
        Some(written_ca.to_str().unwrap())
    );
    assert!(
        t["credential"][0]["auth_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn public_url_sends_clients_to_per_kind_tenant_hosts() {
    let options = sim::SimOptions {
        tls: false,
        public_url: Some(TENANT.to_string()),
    };
    let srv = serve_with(scenario(""), options).await;
    let host = |kind: &str| TENANT.replace("{kind}", kind);
    let urls = srv.public_urls();
    assert_eq!(
        (urls.auth.as_str(), urls.rest.as_str(), urls.soap.as_str()),
        (
            host("auth").as_str(),
            host("rest").as_str(),
            host("soap").as_str()
        )
    );
    let t = token(&srv, json!({})).await;
    assert_eq!(t["rest_instance_url"], host("rest"));
    assert_eq!(t["soap_instance_url"], host("soap"));
    let r = get(&srv, "platform/v1/endpoints", t["access_token"].as_str()).await;
    let v: Value = r.json().await.unwrap();
    let items: Vec<(String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["type"].as_str().unwrap().to_string(),
                i["url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            ("rest".to_string(), host("rest")),
            ("soap".into(), host("soap")),
            ("auth".into(), host("auth"))
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let path = srv.write_config(dir.path(), chrono::Utc::now()).unwrap();
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        t["credential"][0]["auth_url"].as_str(),
        Some(host("auth").as_str())
    );
    srv.shutdown().await;

    // The scenario's base_url does the same, {port} is the bound port; a bad template names its line.
    let s = Scenario::from_toml(
        &format!(
            "[sim]\nbase_url = \"http://{{kind}}.localhost:{{port}}\"\n{}",
            &one_client()
        ),
        "b.toml",
    )
    .unwrap();
    let srv = serve(s).await;
    let port = srv.addr().port();
    assert_eq!(
        srv.public_urls().rest,
        format!("http://rest.localhost:{port}/")
    );
    srv.shutdown().await;
    let err = Scenario::from_toml(
        &format!("[sim]\nbase_url = \"ftp://x\"\n{}", one_client()),
        "b.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("b.toml:2:"), "{err}");
}

fn one_client() -> String {
    format!(
        "[[client]]\nid = \"c\"\nclient_id = \"{ID}\"\nsecret = \"{SECRET}\"\nmids = [\"5100001\"]\n"
    )
}

async fn soap(srv: &SimServer, token: &str, object: &str) -> (u16, String) {
    let envelope = format!(
        r#"<?xml version="1.0"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Header><fueloauth xmlns="http://exacttarget.com">{token}</fueloauth></Header><Body><RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI"><RetrieveRequest><ObjectType>{object}</ObjectType><Properties>ID</Properties></RetrieveRequest></RetrieveRequestMsg></Body></Envelope>"#
    );
    let r = http()
        .post(format!("{}Service.asmx", srv.base_url()))
        .header("SOAPAction", "Retrieve")
        .header("Content-Type", "text/xml")
        .body(envelope)
        .send()
        .await
        .unwrap();
    status_and_text(r).await
}

#[tokio::test]
async fn soap_retrieve_checks_fueloauth_and_sends_the_documented_faults() {
    let srv = serve(scenario("")).await;
    let t = token(&srv, json!({"account_id": "5100002"})).await;
    let tok = t["access_token"].as_str().unwrap();
    let (status, body) = soap(&srv, tok, "BusinessUnit").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<soap:Body><RetrieveResponseMsg xmlns=\"http://exacttarget.com/wsdl/partnerAPI\"><OverallStatus>OK</OverallStatus>"), "{body}");
    assert!(
        body.contains("<Results xsi:type=\"BusinessUnit\">") && body.contains("<ID>5100002</ID>"),
        "{body}"
    );

    let (status, body) = soap(&srv, "not-a-token", "BusinessUnit").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("q0:Security</faultcode><faultstring>Login failed</faultstring>"),
        "{body}"
    );
    srv.shutdown().await;

    // Expired token: "Token Expired".
    let srv = serve(
        Scenario::from_toml(
            &format!("[sim]\nexpires_in = 1\n{}", one_client()),
            "e.toml",
        )
        .unwrap(),
    )
    .await;
    let t = token(&srv, json!({})).await;
    let tok = t["access_token"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = soap(&srv, &tok, "BusinessUnit").await;
        if status == 500 || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains("<faultstring>Token Expired</faultstring>"),
        "{body}"
    );
    srv.shutdown().await;

    // Throttled SOAP is HTTP 500 "Rate Limited".
    let srv = serve(
        Scenario::from_toml(
            &format!("{}rest_fault = \"rate_limited\"\n", one_client()),
            "r.toml",
        )
        .unwrap(),
    )
    .await;
    let t = token(&srv, json!({})).await;
    let (status, body) = soap(&srv, t["access_token"].as_str().unwrap(), "BusinessUnit").await;
    assert_eq!(status, 500);
    assert!(
        body.contains("<faultstring>Rate Limited</faultstring>"),
        "{body}"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn rest_faults_are_the_documented_bodies_with_retry_after() {
    for (fault, status, code, message, retry) in [
        ("rate_limited", 429, 50100, "Rate limit exceeded", Some("9")),
        (
            "blocked",
            429,
            50200,
            "Your requests are temporarily blocked.",
            Some("9"),
        ),
        ("unavailable", 503, 50300, "Service Unavailable", Some("9")),
        (
            "other_stack",
            403,
            40002,
            "Authorization token invalid on this endpoint",
            None,
        ),
    ] {
        let text = format!(
            "{}rest_fault = \"{fault}\"\nretry_after = 9\n",
            one_client()
        );
        let srv = serve(Scenario::from_toml(&text, "r.toml").unwrap()).await;
        let t = token(&srv, json!({})).await;
        let r = get(&srv, "platform/v1/tokenContext", t["access_token"].as_str()).await;
        assert_eq!(r.status(), status, "{fault}");
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.to_str().unwrap()),
            retry,
            "{fault}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["errorcode"].as_i64(), v["message"].as_str()),
            (Some(code), Some(message)),
            "{fault}"
        );
        srv.shutdown().await;
    }
}

#[tokio::test]
async fn token_faults_blocked_bare_and_the_docs_invalid_client_id_wording() {
    let srv = serve(fault_scenario("blocked")).await;
    let r = fault_token(&srv, &http()).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "5");
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["errorcode"].as_i64(), v["message"].as_str()),
        (Some(50200), Some("Your requests are temporarily blocked."))
    );
    srv.shutdown().await;

    let srv = serve(fault_scenario("invalid_client_id")).await;
    let r = fault_token(&srv, &http()).await.unwrap();
    assert_eq!(
        status_and_text(r).await,
        (401, r#"{"error":"invalid_client","error_description":"Invalid client ID. Use the client ID in Marketing Cloud Installed Packages.","error_uri":"https://developer.salesforce.com/docs"}"#.to_string())
    );
    srv.shutdown().await;

    let srv = serve(fault_scenario("bare_token")).await;
    let v: Value = fault_token(&srv, &http())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    srv.shutdown().await;
}

#[tokio::test]
async fn unknown_mid_is_a_scenario_choice() {
    // default: a token for the first MID (tokenContext shows which); reject: 401 at the token endpoint.
    let srv = serve(scenario("")).await;
    let t = token(&srv, json!({"account_id": "7777777"})).await;
    let ctx: Value = get(&srv, "platform/v1/tokenContext", t["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ctx["organization"]["id"], 5100001);
    srv.shutdown().await;

    let srv = serve(
        Scenario::from_toml(
            &format!("[sim]\nunknown_mid = \"reject\"\n{}", one_client()),
            "m.toml",
        )
        .unwrap(),
    )
    .await;
    let r = token_raw(&srv, json!({"grant_type":"client_credentials","client_id":ID,"client_secret":SECRET,"account_id":"7777777"})).await;
    let (status, body) = status_and_text(r).await;
    assert_eq!(status, 401);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "unauthorized_client");
    // Its own MID still works.
    token(&srv, json!({"account_id": 5100001})).await;
    srv.shutdown().await;
}

#[tokio::test]
async fn token_context_status_follows_the_scenario() {
    let srv = serve(
        Scenario::from_toml(
            &format!("[sim]\ntoken_context_status = 202\n{}", one_client()),
            "s.toml",
        )
        .unwrap(),
    )
    .await;
    let t = token(&srv, json!({})).await;
    assert_eq!(
        get(&srv, "platform/v1/tokenContext", t["access_token"].as_str())
            .await
            .status(),
        202
    );
    srv.shutdown().await;
    let err = Scenario::from_toml(
        &format!("[sim]\ntoken_context_status = 302\n{}", one_client()),
        "s.toml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("200 to 299"), "{err}");
}
