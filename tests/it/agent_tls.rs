//! The agent's optional TLS (`[agent] tls_cert` / `tls_key`) with a self-signed certificate made on the spot:
//! https works for a client trusting it, plain http on the same port does not, and bad files stop the start
//! with an error naming the file.

use crate::common::*;
use authwatch::agent::{AgentOptions, RunningAgent, client};
use authwatch::config::Settings;
use authwatch::probe::Prober;
use secrecy::SecretString;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CLIENT: &str = "5c9e1b7aa0d44f3e8a2b91c7";

struct Pem {
    cert: String,
    key: String,
}

/// A self-signed certificate for 127.0.0.1 and localhost.
fn self_signed() -> Pem {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".into()])
        .expect("rcgen makes a certificate");
    Pem {
        cert: ck.cert.pem(),
        key: ck.signing_key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn config_text(auth_url: &str, secret: &Path, cert: &Path, key: &Path, settings: &str) -> String {
    format!(
        "[settings]\nprobe_interval = \"1h\"\n{settings}\n\
         [agent]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\n{}{}",
        cert.display(),
        key.display(),
        sfmc_credential("pkg", auth_url, CLIENT, secret),
        integration("crm-sync", "pkg", "team = \"crm-ops\""),
    )
}

fn trusting(pem: &Pem) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.cert.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// An agent serving https with a fresh self-signed certificate, probing the simulator.
struct TlsAgent {
    _sim: authwatch::sim::SimServer,
    dir: tempfile::TempDir,
    secret: PathBuf,
    pem: Pem,
    cert: PathBuf,
    agent: RunningAgent,
}

async fn tls_agent() -> TlsAgent {
    let sim = start_sim(&one_client_scenario(CLIENT, SENTINEL, "")).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let pem = self_signed();
    let cert = write(dir.path(), "cert.pem", &pem.cert);
    let key = write_secret(dir.path(), "key.pem", &pem.key);
    let cfg = load_config(
        dir.path(),
        &config_text(&sim.base_url(), &secret, &cert, &key, ""),
    );
    let agent = RunningAgent::start(cfg, AgentOptions::default())
        .await
        .expect("agent starts with TLS");
    TlsAgent {
        _sim: sim,
        dir,
        secret,
        pem,
        cert,
        agent,
    }
}

#[tokio::test]
async fn https_with_the_certificate_and_no_plain_http() {
    let TlsAgent {
        _sim,
        dir,
        secret: _,
        pem,
        cert,
        agent,
    } = tls_agent().await;
    assert!(agent.tls);
    let base = agent.url();
    let port = agent.addr.port();
    assert_eq!(base, format!("https://127.0.0.1:{port}"));

    // A client trusting the certificate: by address and by name.
    let https = trusting(&pem);
    for url in [
        format!("{base}/healthz"),
        format!("https://localhost:{port}/healthz"),
    ] {
        let resp = https.get(&url).send().await.unwrap_or_else(|e| {
            panic!("GET {url} over TLS: {e:?}");
        });
        assert_eq!(resp.status(), 200, "{url}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
    let state: serde_json::Value = https
        .get(format!("{base}/api/v1/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["integrations"][0]["name"], "crm-sync");

    // A client that does not trust it refuses the handshake.
    let untrusting = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let err = untrusting
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect_err("an unknown issuer is refused");
    assert!(err.is_connect(), "{err:?}");

    // Plain http to the TLS port: no answer, an error (and quickly, not after a timeout).
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let result = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(result.is_err(), "plain http answered: {result:?}");
    assert!(!result.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_secs(5));
    // ... and the agent still serves https afterwards.
    assert_eq!(
        https
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The `--connect` client trusts only the web roots unless given the certificate (`--ca-file`); the error says
    // why the handshake failed.
    let Err(e) = client::connect(base.parse().unwrap(), None::<SecretString>).await else {
        panic!("--connect trusted a self-signed certificate it was never given");
    };
    assert!(matches!(e, client::ConnectError::Unreachable { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("cannot reach the agent at {base}")),
        "{text}"
    );
    assert!(text.contains("certificate"), "the cause is named: {text}");
    let conn = client::connect_with(base.parse().unwrap(), None::<SecretString>, Some(&cert))
        .await
        .expect("--ca-file trusts the agent's certificate");
    let mut rx = conn.handle.watch();
    tokio::time::timeout(Duration::from_secs(20), async {
        while rx.borrow_and_update().integration("crm-sync").is_none() {
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the console client follows the agent over TLS");
    let garbled = write(dir.path(), "not-a-cert.pem", "hello");
    let Err(e) =
        client::connect_with(base.parse().unwrap(), None::<SecretString>, Some(&garbled)).await
    else {
        panic!("a file without certificates was accepted");
    };
    assert!(
        e.to_string()
            .contains("not-a-cert.pem holds no PEM certificate"),
        "{e}"
    );
    agent.stop().await;
}

/// `[settings] ca_file` (the only CA option there is: it is for probes) trusts the same certificate: a token
/// request to the TLS agent gets through the handshake and is answered over HTTP (404: no token endpoint
/// there), where without it the connection fails.
#[tokio::test]
async fn settings_ca_file_trusts_a_self_signed_certificate() {
    let TlsAgent {
        _sim,
        dir,
        secret,
        pem: _,
        cert,
        agent,
    } = tls_agent().await;

    // A credential whose auth_url is the TLS agent.
    let sub = dir.path().join("probe");
    std::fs::create_dir(&sub).unwrap();
    let probe_cfg = load_config(
        &sub,
        &format!(
            "[settings]\nca_file = \"{}\"\n\n{}{}",
            cert.display(),
            sfmc_credential("tls", &format!("{}/", agent.url()), CLIENT, &secret),
            integration("x", "tls", ""),
        ),
    );
    let cred = &probe_cfg.credentials[0];
    let secret_value = SecretString::from(SENTINEL.to_string());

    let with_ca = Prober::new(&probe_cfg.settings).expect("ca_file is a usable PEM");
    let failure = match with_ca.request_token(cred, &secret_value, None, &[]).await {
        Ok(_) => panic!("the agent issued a token"),
        Err(f) => f,
    };
    assert!(
        failure.http_status.is_some_and(|s| (400..500).contains(&s)),
        "with ca_file: {failure:?}"
    );

    let without = Prober::new(&Settings {
        ca_file: None,
        ..probe_cfg.settings.clone()
    })
    .unwrap();
    let failure = match without.request_token(cred, &secret_value, None, &[]).await {
        Ok(_) => panic!("the agent issued a token"),
        Err(f) => f,
    };
    assert_eq!(failure.http_status, None, "without ca_file: {failure:?}");
    agent.stop().await;
}

#[tokio::test]
async fn bad_certificate_or_key_files_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path(), "secret", SENTINEL);
    let good = self_signed();
    let other = self_signed();
    let garbled_b64 = "-----BEGIN CERTIFICATE-----\nnot*base64*at*all\n-----END CERTIFICATE-----\n";
    let missing = "MISSING";
    // (certificate file content, key file content, the error begins with, mentions the file)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            missing,
            &good.key,
            "cannot read TLS certificate",
            "cert.pem",
        ),
        (
            "hello, not a certificate\n",
            &good.key,
            "no certificate in",
            "cert.pem",
        ),
        (garbled_b64, &good.key, "bad TLS certificate", "cert.pem"),
        (&good.cert, missing, "cannot read TLS key", "key.pem"),
        (&good.cert, "not a key\n", "cannot read TLS key", "key.pem"),
        (
            &good.cert,
            &other.key,
            "TLS certificate and key do not fit together",
            "",
        ),
    ];
    for (i, (cert_text, key_text, expected, file)) in cases.iter().enumerate() {
        let case = dir.path().join(format!("case{i}"));
        std::fs::create_dir(&case).unwrap();
        let cert = case.join("cert.pem");
        let key = case.join("key.pem");
        if *cert_text != missing {
            std::fs::write(&cert, cert_text).unwrap();
        }
        if *key_text != missing {
            std::fs::write(&key, key_text).unwrap();
        }
        let cfg = load_config(
            &case,
            // Nothing is probed: the start stops before the engine.
            &config_text("http://127.0.0.1:9", &secret, &cert, &key, ""),
        );
        let Err(e) = RunningAgent::start(cfg, AgentOptions::default()).await else {
            panic!("case {i}: the agent started with {expected:?} files");
        };
        assert!(e.starts_with(expected), "case {i}: {e}");
        if !file.is_empty() {
            assert!(
                e.contains(&case.join(file).display().to_string()),
                "case {i}: {e}"
            );
        }
        // Never key material in the message.
        assert!(
            !e.contains("PRIVATE KEY") && !e.contains(&good.key[40..80]),
            "case {i}: {e}"
        );
    }
}
