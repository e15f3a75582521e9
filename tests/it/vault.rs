//! The encrypted store: AES-256-GCM, one 0600 file, fresh nonces, `secret set` from stdin, `{ store = .. }`.

use crate::common::{self, SENTINEL};
use authwatch::secrets::SecretRef;
use authwatch::secrets::vault::{MasterKey, Vault, VaultError};
use secrecy::{ExposeSecret, SecretString};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const OTHER: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

fn vault(dir: &std::path::Path, key: &str) -> Vault {
    Vault::new(dir.join("secrets.vault"), &MasterKey::parse(key).unwrap())
}

#[test]
fn round_trip_mode_0600_no_plaintext_and_fresh_nonces() {
    let dir = tempfile::tempdir().unwrap();
    let v = vault(dir.path(), KEY);
    assert!(v.get("crm").unwrap().is_none());
    v.set("crm", &SecretString::from(SENTINEL)).unwrap();
    v.set("other", &SecretString::from(SENTINEL)).unwrap();
    assert_eq!(v.get("crm").unwrap().unwrap().expose_secret(), SENTINEL);
    let file = dir.path().join("secrets.vault");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let bytes = std::fs::read_to_string(&file).unwrap();
    assert!(!bytes.contains(SENTINEL));
    // Same plaintext twice, and re-encrypting an entry: never the same nonce or ciphertext.
    let mut nonces = v.nonces().unwrap();
    for _ in 0..20 {
        v.set("crm", &SecretString::from(SENTINEL)).unwrap();
        nonces.extend(v.nonces().unwrap());
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 22, "every encryption gets a fresh nonce");
    assert_eq!(v.names().unwrap(), ["crm", "other"]);
    assert!(v.remove("crm").unwrap());
    assert!(!v.remove("crm").unwrap());
    assert!(!format!("{v:?}").contains(SENTINEL));
}

#[test]
fn wrong_key_tampering_and_moving_entries_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    vault(dir.path(), KEY)
        .set("crm", &SecretString::from(SENTINEL))
        .unwrap();
    let wrong = vault(dir.path(), OTHER);
    assert!(matches!(wrong.get("crm"), Err(VaultError::Decrypt { .. })));
    // A second key may not write into the same file.
    assert!(wrong.set("x", &SecretString::from("y")).is_err());
    // Move the entry to another name: the name is authenticated.
    let file = dir.path().join("secrets.vault");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"crm\"", "\"moved\"");
    std::fs::write(&file, text).unwrap();
    let v = vault(dir.path(), KEY);
    assert!(matches!(v.get("moved"), Err(VaultError::Decrypt { .. })));
    let e = v.require("crm").unwrap_err().to_string();
    assert!(e.contains("authwatch secret set crm"), "{e}");
}

#[test]
fn master_key_format() {
    assert!(MasterKey::parse(KEY).is_ok());
    assert!(MasterKey::parse(&format!(" {KEY}\n")).is_ok());
    assert!(MasterKey::parse(&KEY[..62]).is_err());
    assert!(MasterKey::parse(&KEY.replace('0', "g")).is_err());
    assert!(!format!("{:?}", MasterKey::parse(KEY).unwrap()).contains("0011"));
}

#[test]
fn secret_set_reads_stdin_prints_no_secret_and_store_references_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str, key: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_authwatch"));
        cmd.args(args)
            .env_clear()
            .env("HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(k) = key {
            cmd.env("AUTHWATCH_MASTER_KEY", k);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(
        &["secret", "set", "crm"],
        &format!("{SENTINEL}\n"),
        Some(KEY),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("{ store = \"crm\" }"), "{out}");
    assert!(!out.contains(SENTINEL) && !err.contains(SENTINEL));
    // Without a key: a usage error saying how to make one.
    let (code, _, err) = run(&["secret", "set", "crm"], "x\n", None);
    assert_eq!(code, 3);
    assert!(err.contains("openssl rand -hex 32"), "{err}");
    // Empty stdin.
    let (code, _, err) = run(&["secret", "set", "crm"], "", Some(KEY));
    assert_eq!(code, 3);
    assert!(err.contains("no secret"), "{err}");
    // There is no subcommand that prints a secret.
    let (code, _, _) = run(&["secret", "get", "crm"], "", Some(KEY));
    assert_eq!(code, 3);
    let file = dir.path().join("state/authwatch/secrets.vault");
    assert!(!std::fs::read_to_string(&file).unwrap().contains(SENTINEL));

    // The default-path store resolves through `{ store = "crm" }` (the key comes from the environment).
    let v = Vault::new(file, &MasterKey::parse(KEY).unwrap());
    assert_eq!(v.require("crm").unwrap().expose_secret(), SENTINEL);
}

#[tokio::test]
async fn store_reference_parses_from_config_and_shows_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[[credential]]\nid = \"pkg\"\nauth_url = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\nclient_secret = { store = \"crm\" }\n\n[[integration]]\nname = \"i\"\ncredential = \"pkg\"\n";
    let config = common::load_config(dir.path(), text);
    let r = &config.credentials[0].client_secret;
    assert_eq!(*r, SecretRef::Store("crm".into()));
    assert_eq!(r.to_string(), "store:crm");
    assert_eq!(format!("{r:?}"), "SecretRef(store:crm)");
    assert_eq!(r.kind(), "store");
    let bad = "[[credential]]\nid = \"pkg\"\nauth_url = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\nclient_secret = { store = \"\" }\n";
    let path = common::write_config(dir.path(), bad);
    let e = authwatch::config::load(&path).unwrap_err().to_string();
    assert!(e.contains("empty `store`"), "{e}");
}
