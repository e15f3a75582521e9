//! Facts about the machine we run on: who the OS user is, and whether a URL names this machine.

use std::sync::OnceLock;
use url::Url;

/// The OS user running authwatch (who acknowledges, who rotates): `$USER`, else `$LOGNAME`, else the password
/// database entry of the effective uid, else "unknown". Looked up once per process: the answer does not change,
/// and the lookup must not block the async workers each time someone presses `a`.
pub fn os_user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        let from_env = ["USER", "LOGNAME"].iter().find_map(|v| {
            std::env::var(v)
                .ok()
                .map(|s| clean(&s))
                .filter(|s| !s.is_empty())
        });
        from_env
            .or_else(|| passwd_name().map(|s| clean(&s)).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "unknown".into())
    })
}

/// A user name enters the model (acks, the audit trail): no control characters, bounded length.
fn clean(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect()
}

/// The name of the effective uid in the password database (what `id -un` prints), without running a program.
fn passwd_name() -> Option<String> {
    // SAFETY: geteuid cannot fail. getpwuid_r writes only into `pwd` and `buf` (whose length we pass) and sets
    // `result` to `&pwd` or null; `pw_name` points into `buf`, which outlives the CStr we copy out of it.
    let uid = unsafe { libc::geteuid() };
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// Whether a request to `url` stays on this machine (so a token sent over plain http crosses no network):
/// a loopback address, or `localhost` itself. Not `*.localhost`: RFC 6761 only asks resolvers to map those to
/// loopback, and the system resolver our HTTP client uses may send them to DNS, which can answer anything.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            d.eq_ignore_ascii_case("localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_localhost_and_loopback_addresses_only() {
        let cases = [
            ("http://localhost:9477/", true),
            ("http://LOCALHOST/", true),
            ("http://localhost./", true),
            ("http://127.0.0.1/", true),
            ("http://127.8.9.10/", true),
            ("http://[::1]/", true),
            ("http://[::ffff:127.0.0.1]/", true),
            // The system resolver may ask DNS for these, and DNS may answer with any address.
            ("http://agent.localhost/", false),
            ("http://localhost.example.com/", false),
            ("http://10.0.0.1/", false),
            ("http://[::2]/", false),
            ("http://agent:9477/", false),
        ];
        for (url, want) in cases {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), want, "{url}");
        }
    }

    #[test]
    fn os_user_is_a_clean_name() {
        let user = os_user();
        assert!(!user.is_empty());
        assert!(!user.chars().any(char::is_control), "{user:?}");
        // The same answer every time (looked up once).
        assert!(std::ptr::eq(user, os_user()));
    }

    #[test]
    fn passwd_lookup_names_the_effective_user() {
        // What `id -un` prints, when the tool exists here; the lookup itself must work without it.
        let Ok(out) = std::process::Command::new("id").arg("-un").output() else {
            return;
        };
        let expected = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(passwd_name().as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn names_lose_control_characters() {
        assert_eq!(clean(" alice\u{1b}[31m\n"), "alice[31m");
        assert_eq!(clean(&"x".repeat(200)).len(), 64);
    }
}
