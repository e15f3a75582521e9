//! Every probe outcome, over real HTTP against the simulator on a loopback port.

use crate::common::*;
use authwatch::config::Config;
use authwatch::model::{Outcome, Phase, ProbeResult};
use authwatch::probe::{self, Freshness, ProbeTarget, Prober, TokenCache};
use std::time::Instant;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";

/// Probe the first integration of `config` once with a fresh token.
pub(crate) async fn probe_once(config: &Config) -> ProbeResult {
    let prober = Prober::new(&config.settings).unwrap();
    let cache = TokenCache::new();
    probe_with(config, &prober, &cache, Some(Instant::now())).await
}

async fn probe_with(
    config: &Config,
    prober: &Prober,
    cache: &TokenCache,
    fresh_since: Option<Instant>,
) -> ProbeResult {
    let integration = &config.integrations[0];
    let credential = config.credential(&integration.credential).unwrap();
    let secret = probe::secret_source(
        &credential.client_secret,
        config.settings.secret_command_timeout,
    );
    probe::probe(
        prober,
        cache,
        ProbeTarget {
            integration,
            credential,
        },
        &secret,
        Freshness {
            token_since: fresh_since,
            batch: Instant::now(),
        },
    )
    .await
    .expect("secret resolves")
}

/// Simulator with one client, a config with one integration, and the probe result.
async fn scenario_probe(
    client_extra: &str,
    secret_in_config: &str,
    integration_extra: &str,
    settings: &str,
) -> ProbeResult {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, client_extra)).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", secret_in_config);
    let text = format!(
        "[settings]\n{settings}\n\n{}{}",
        sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret),
        integration("crm-sync", "pkg", integration_extra)
    );
    let config = load_config(dir.path(), &text);
    let r = probe_once(&config).await;
    sim.shutdown().await;
    r
}

#[tokio::test]
async fn healthy_integration_is_ok_with_mid_and_scopes() {
    let r = scenario_probe(
        "",
        SENTINEL,
        "account_id = \"5100002\"\nscopes = [\"data_extensions_read\"]",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.http_status, Some(200));
    assert_eq!(r.mid.as_deref(), Some("5100002"));
    assert!(r.fresh_token);
    assert!(r.token_ms.is_some() && r.call_ms.is_some());
    assert_eq!(
        r.granted_scopes.as_deref(),
        Some(&["data_extensions_read".to_string()][..])
    );
    assert!(r.missing_scopes.is_empty());
}

#[tokio::test]
async fn wrong_secret_is_auth_rejected_invalid_client() {
    let r = scenario_probe("", "not-the-secret", "", "").await;
    assert_eq!(r.outcome, Outcome::AuthRejected);
    assert_eq!(r.phase, Phase::Token);
    assert_eq!(r.http_status, Some(401));
    assert_eq!(r.error.as_deref(), Some("invalid_client"));
    assert!(
        r.detail
            .unwrap()
            .starts_with("Client authentication failed")
    );
    assert_eq!(r.call_ms, None);
}

#[tokio::test]
async fn expired_secret_is_auth_rejected() {
    let r = scenario_probe("secret_valid = false", SENTINEL, "", "").await;
    assert_eq!(r.outcome, Outcome::AuthRejected);
    assert_eq!(r.error.as_deref(), Some("invalid_client"));
}

#[tokio::test]
async fn required_scope_not_granted_is_scope_missing_and_named() {
    let r = scenario_probe(
        "",
        SENTINEL,
        "scopes = [\"data_extensions_read\", \"data_extensions_write\"]",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::ScopeMissing, "{r:?}");
    assert_eq!(r.missing_scopes, ["data_extensions_write"]);
    assert_eq!(r.summary(), "scope data_extensions_write missing");
}

#[tokio::test]
async fn call_refused_for_missing_privilege_is_forbidden() {
    // The package lacks documents_and_images_read; the check call needs it, no scope is declared as required.
    let r = scenario_probe("", SENTINEL, "check_path = \"asset/v1/content/assets\"", "").await;
    assert_eq!(r.outcome, Outcome::Forbidden, "{r:?}");
    assert_eq!(r.phase, Phase::Call);
    assert_eq!(r.http_status, Some(403));
    assert_eq!(
        r.error.as_deref(),
        Some("Insufficient privileges to complete this action.")
    );
}

#[tokio::test]
async fn token_for_another_business_unit_is_wrong_account() {
    let r = scenario_probe("", SENTINEL, "account_id = \"7777777\"", "").await;
    assert_eq!(r.outcome, Outcome::WrongAccount, "{r:?}");
    assert_eq!(r.mid.as_deref(), Some("5100001"));
    assert_eq!(r.error.as_deref(), Some("MID 5100001, expected 7777777"));
}

#[tokio::test]
async fn rate_limited_token_request_carries_retry_after() {
    let r = scenario_probe(
        "fault = \"rate_limited\"\nretry_after = 7",
        SENTINEL,
        "",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::RateLimited);
    assert_eq!(r.http_status, Some(429));
    assert_eq!(r.retry_after_secs, Some(7));
    assert_eq!(r.error.as_deref(), Some("Rate limit exceeded"));
}

#[tokio::test]
async fn unavailable_is_server_error() {
    let r = scenario_probe(
        "fault = \"server_error\"\nretry_after = 3",
        SENTINEL,
        "",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::ServerError);
    assert_eq!(r.http_status, Some(503));
    assert_eq!(r.retry_after_secs, Some(3));
}

#[tokio::test]
async fn malformed_json_is_bad_response() {
    let r = scenario_probe("fault = \"malformed_json\"", SENTINEL, "", "").await;
    assert_eq!(r.outcome, Outcome::BadResponse);
    assert_eq!(r.error.as_deref(), Some("token response is not valid JSON"));
}

#[tokio::test]
async fn huge_body_is_refused_as_bad_response() {
    let r = scenario_probe("fault = \"huge_body\"", SENTINEL, "", "").await;
    assert_eq!(r.outcome, Outcome::BadResponse);
    assert_eq!(r.error.as_deref(), Some("response body larger than 1 MiB"));
}

#[tokio::test]
async fn hanging_server_is_timeout() {
    let r = scenario_probe("fault = \"timeout\"", SENTINEL, "", "timeout = \"300ms\"").await;
    assert_eq!(r.outcome, Outcome::Timeout, "{r:?}");
    assert_eq!(r.http_status, None);
}

#[tokio::test]
async fn wrong_path_is_not_found() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let url = format!("{}wrong-tenant/", sim.base_url());
    let text = sfmc_credential("pkg", &url, CLIENT, &secret) + &integration("crm-sync", "pkg", "");
    let r = probe_once(&load_config(dir.path(), &text)).await;
    assert_eq!(r.outcome, Outcome::NotFound, "{r:?}");
    assert_eq!(r.http_status, Some(404));
}

#[tokio::test]
async fn closed_port_is_network_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = sfmc_credential("pkg", &format!("http://127.0.0.1:{port}/"), CLIENT, &secret)
        + &integration("crm-sync", "pkg", "");
    let r = probe_once(&load_config(dir.path(), &text)).await;
    assert_eq!(r.outcome, Outcome::Network, "{r:?}");
    assert_eq!(r.error.as_deref(), Some("connection refused"));
}

#[tokio::test]
async fn tls_to_a_plain_http_server_is_network_error() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let url = sim.base_url().replace("http://", "https://");
    let text = sfmc_credential("pkg", &url, CLIENT, &secret) + &integration("crm-sync", "pkg", "");
    let r = probe_once(&load_config(dir.path(), &text)).await;
    assert_eq!(r.outcome, Outcome::Network, "{r:?}");
    assert_eq!(
        r.error.as_deref(),
        Some("TLS to a plain http port: use http:// or the TLS port"),
        "{:?}",
        r.detail
    );
}

#[tokio::test]
async fn call_refusing_a_fresh_token_is_token_rejected() {
    // The generic OAuth2 provider gets a token from one tenant and calls another, which does not know it.
    let sim_a = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let sim_b = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = format!(
        "[[credential]]\nid = \"pkg\"\nprovider = \"oauth2\"\ntoken_url = \"{}oauth2/token\"\nclient_id = \"{CLIENT}\"\nclient_secret = {{ file = \"{}\" }}\n\n{}",
        sim_a.base_url(),
        secret.display(),
        integration(
            "other-stack",
            "pkg",
            &format!("check_url = \"{}platform/v1/endpoints\"", sim_b.base_url())
        )
    );
    let r = probe_once(&load_config(dir.path(), &text)).await;
    assert_eq!(r.outcome, Outcome::TokenRejected, "{r:?}");
    assert_eq!(r.http_status, Some(401));
    assert_eq!(r.error.as_deref(), Some("Not Authorized"));
}

#[tokio::test]
async fn oauth2_basic_and_body_client_auth_both_work() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    for auth in ["basic", "body"] {
        let dir = tempfile::tempdir().unwrap();
        let secret = write_secret(dir.path(), "secret", SENTINEL);
        let text = format!(
            "[[credential]]\nid = \"pkg\"\nprovider = \"oauth2\"\ntoken_url = \"{}oauth2/token\"\nclient_auth = \"{auth}\"\nclient_id = \"{CLIENT}\"\nclient_secret = {{ file = \"{}\" }}\n\n{}",
            sim.base_url(),
            secret.display(),
            integration("core", "pkg", "")
        );
        let r = probe_once(&load_config(dir.path(), &text)).await;
        assert_eq!(r.outcome, Outcome::Ok, "{auth}: {r:?}");
        assert_eq!(
            r.call_ms, None,
            "no check_url: the token request is the probe"
        );
    }
}

#[tokio::test]
async fn cached_token_is_reused_and_a_revoked_one_retried_fresh() {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret)
        + &integration("crm-sync", "pkg", "");
    let config = load_config(dir.path(), &text);
    let prober = Prober::new(&config.settings).unwrap();
    let cache = TokenCache::new();
    let first = probe_with(&config, &prober, &cache, None).await;
    let second = probe_with(&config, &prober, &cache, None).await;
    assert!(first.fresh_token && !second.fresh_token);
    assert_eq!(second.outcome, Outcome::Ok);
    assert_eq!(sim.token_requests(CLIENT), 1);
    // A forced probe asks for a new token even though the cached one is still good.
    let forced = probe_with(&config, &prober, &cache, Some(Instant::now())).await;
    assert!(forced.fresh_token);
    assert_eq!(sim.token_requests(CLIENT), 2);
    // The server drops the cached token early: the 401 is retried once with a fresh token before it counts.
    assert_eq!(sim.invalidate_tokens("pkg").unwrap(), 2);
    let retried = probe_with(&config, &prober, &cache, None).await;
    assert_eq!(retried.outcome, Outcome::Ok, "{retried:?}");
    assert!(retried.fresh_token);
    assert_eq!(sim.token_requests(CLIENT), 3);
    let calls = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("tokenContext"))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(calls, [200, 200, 200, 401, 200]);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------------
// Fidelity (issue 14): OAuth 2.0 exactly, and words that name the cause.

/// An oauth2 credential on `sim` with this client auth, id and secret.
fn oauth2_config(
    dir: &std::path::Path,
    token_url: &str,
    auth: &str,
    id: &str,
    secret: &str,
    extra: &str,
) -> Config {
    let secret = write_secret(dir, "secret", secret);
    let text = format!(
        "[[credential]]\nid = \"pkg\"\nprovider = \"oauth2\"\ntoken_url = \"{token_url}\"\nclient_auth = \"{auth}\"\nclient_id = \"{id}\"\nclient_secret = {{ file = \"{}\" }}\n\n{}",
        secret.display(),
        integration("core", "pkg", extra)
    );
    load_config(dir, &text)
}

#[tokio::test]
async fn oauth2_basic_auth_form_urlencodes_id_and_secret_rfc6749_2_3_1() {
    const ID: &str = "special:client+1";
    const SECRET: &str = "Ab+Cd/Ef=Gh%41:z";
    let sim = start_sim(&one_client_scenario(ID, SECRET, "")).await;
    for auth in ["basic", "body"] {
        let dir = tempfile::tempdir().unwrap();
        let token_url = format!("{}oauth2/token", sim.base_url());
        let config = oauth2_config(dir.path(), &token_url, auth, ID, SECRET, "");
        let r = probe_once(&config).await;
        assert_eq!(r.outcome, Outcome::Ok, "{auth}: {r:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_host_is_named_no_such_host() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    // RFC 6761: .invalid never resolves.
    let text = sfmc_credential(
        "pkg",
        "http://mc-nonexistent.auth.invalid/",
        CLIENT,
        &secret,
    ) + &integration("crm-sync", "pkg", "");
    let r = probe_once(&load_config(dir.path(), &text)).await;
    assert_eq!(r.outcome, Outcome::Network, "{r:?}");
    assert_eq!(
        r.error.as_deref(),
        Some("no such host mc-nonexistent.auth.invalid: check the subdomain"),
        "{:?}",
        r.detail
    );
}

#[tokio::test]
async fn error_description_and_errorcode_are_in_the_reason() {
    let r = scenario_probe("", "not-the-secret", "", "").await;
    assert_eq!(
        r.explained(),
        "token request rejected: invalid_client (401). Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled."
    );
    let r = scenario_probe("", SENTINEL, "check_path = \"asset/v1/content/assets\"", "").await;
    assert_eq!(
        r.summary(),
        "forbidden: Insufficient privileges to complete this action. (403, errorcode 20002)"
    );
}

#[tokio::test]
async fn token_context_answering_202_is_reported_as_202() {
    let sim = start_sim(&format!(
        "[sim]\ntoken_context_status = 202\n{}",
        one_client_scenario(CLIENT, SENTINEL, "").replace("[sim]\n", "")
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let text = sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret)
        + &integration("crm-sync", "pkg", "account_id = \"5100001\"");
    let r = probe_once(&load_config(dir.path(), &text)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.http_status, Some(202));
    assert_eq!(r.mid.as_deref(), Some("5100001"));
    sim.shutdown().await;
}

#[tokio::test]
async fn token_response_without_what_the_checks_need_is_bad_response() {
    // SFMC: no rest_instance_url means no call, so neither the MID nor the call can be checked.
    let r = scenario_probe(
        "fault = \"bare_token\"",
        SENTINEL,
        "account_id = \"5100001\"",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::BadResponse, "{r:?}");
    assert_eq!(r.http_status, Some(200));
    assert_eq!(
        r.error.as_deref(),
        Some("token response lacks rest_instance_url (needed for the check call)")
    );
    // SFMC always states the granted scopes; without them configured scopes cannot be verified.
    let sim = start_sim(&one_client_scenario(
        CLIENT,
        SENTINEL,
        "fault = \"bare_token\"",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_url = format!("{}oauth2/token", sim.base_url());
    // RFC 6749 §5.1: an oauth2 server may omit `scope` when it granted what was asked.
    let config = oauth2_config(
        dir.path(),
        &token_url,
        "basic",
        CLIENT,
        SENTINEL,
        "scopes = [\"email_read\"]",
    );
    let r = probe_once(&config).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    sim.shutdown().await;
    let r = scenario_probe(
        "fault = \"bare_token\"",
        SENTINEL,
        "scopes = [\"email_read\"]\ncheck_path = \"platform/v1/tokenContext\"",
        "",
    )
    .await;
    assert_eq!(r.outcome, Outcome::BadResponse, "{r:?}");
}

#[tokio::test]
async fn private_ca_without_ca_file_says_set_ca_file_and_with_it_is_ok() {
    let scenario =
        authwatch::sim::Scenario::from_toml(&one_client_scenario(CLIENT, SENTINEL, ""), "tls.toml")
            .unwrap();
    let sim = authwatch::sim::start_with(
        scenario,
        "127.0.0.1:0".parse().unwrap(),
        authwatch::sim::SimOptions {
            tls: true,
            public_url: None,
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let body = sfmc_credential("pkg", &sim.base_url(), CLIENT, &secret)
        + &integration("crm-sync", "pkg", "account_id = \"5100001\"");
    let r = probe_once(&load_config(dir.path(), &body)).await;
    assert_eq!(r.outcome, Outcome::Network, "{r:?}");
    assert_eq!(
        r.error.as_deref(),
        Some("certificate not trusted (UnknownIssuer): set ca_file")
    );
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sim.ca_pem().unwrap()).unwrap();
    let text = format!("[settings]\nca_file = \"{}\"\n\n{body}", ca.display());
    let r = probe_once(&load_config(dir.path(), &text)).await;
    assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
    assert_eq!(r.mid.as_deref(), Some("5100001"));
    sim.shutdown().await;
}
