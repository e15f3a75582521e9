//! Mapping a parsed 401/403 to the integration it belongs to.

use super::parse::MatchKeys;
use crate::config::Config;
use std::collections::HashMap;

/// Maps [`MatchKeys`] to an integration of a [`Config`]. Keys are tried in this order, the first that maps wins:
///
/// 1. **integration**: an integration name (exact, else ASCII case-insensitive).
/// 2. **client_id**: the credentials with that client_id (exact). Among the integrations using them (config order):
///    exactly one -> that one; else the first whose `account_id` equals the event's account_id; else (ambiguous)
///    the first of them, i.e. the credential's first integration in config order.
/// 3. **account_id**: the first integration (config order) with that `account_id`.
/// 4. **host**: the credentials whose `auth_url`/`token_url` host equals the event's URL host (case-insensitive),
///    resolved like client_id. SFMC hosts `{tenant}.{auth|rest|soap}.marketingcloudapis.com` compare by tenant, so
///    a 401 from the REST host maps to the credential whose auth_url is on the same tenant.
///
/// A key that is present but maps to nothing falls through to the next one. Nothing maps: unmatched.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    names: Vec<String>,
    by_name: HashMap<String, usize>,
    by_name_lower: HashMap<String, usize>,
    /// client_id -> integrations of the credentials with it, config order, with their account ids.
    by_client_id: HashMap<String, Vec<usize>>,
    by_account: HashMap<String, usize>,
    /// host key -> integrations of the credentials on that host.
    by_host: HashMap<String, Vec<usize>>,
    accounts: Vec<Option<String>>,
}

impl Matcher {
    /// A matcher with no integrations: everything is unmatched.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn from_config(config: &Config) -> Self {
        let mut m = Matcher::default();
        for (i, integ) in config.integrations.iter().enumerate() {
            m.names.push(integ.name.clone());
            m.accounts.push(integ.account_id.clone());
            m.by_name.entry(integ.name.clone()).or_insert(i);
            m.by_name_lower
                .entry(integ.name.to_ascii_lowercase())
                .or_insert(i);
            if let Some(acc) = &integ.account_id {
                m.by_account.entry(acc.trim().to_owned()).or_insert(i);
            }
        }
        for cred in &config.credentials {
            let users: Vec<usize> = config
                .integrations
                .iter()
                .enumerate()
                .filter(|(_, integ)| integ.credential == cred.id)
                .map(|(i, _)| i)
                .collect();
            if users.is_empty() {
                continue;
            }
            add_all(
                m.by_client_id.entry(cred.client_id.clone()).or_default(),
                &users,
            );
            let mut hosts: Vec<String> = [&cred.auth_url, &cred.token_url]
                .into_iter()
                .flatten()
                .filter_map(|u| u.host_str())
                .map(|h| host_key(h).into_owned())
                .collect();
            hosts.dedup();
            for h in hosts {
                add_all(m.by_host.entry(h).or_default(), &users);
            }
        }
        m
    }

    /// Integration names, config order; indexes returned by [`Matcher::resolve`] point here.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of the integration the keys map to.
    pub fn resolve(&self, keys: &MatchKeys<'_>) -> Option<usize> {
        if let Some(name) = keys.integration.as_deref() {
            if let Some(&i) = self.by_name.get(name) {
                return Some(i);
            }
            if let Some(&i) = self.by_name_lower.get(name.to_ascii_lowercase().as_str()) {
                return Some(i);
            }
        }
        let account = keys.account_id.as_deref().map(str::trim);
        if let Some(cid) = keys.client_id.as_deref()
            && let Some(users) = self.by_client_id.get(cid.trim())
            && let Some(i) = self.pick(users, account)
        {
            return Some(i);
        }
        if let Some(acc) = account
            && let Some(&i) = self.by_account.get(acc)
        {
            return Some(i);
        }
        if let Some(host) = keys.host.as_deref()
            && let Some(users) = self.by_host.get(host_key(host).as_ref())
            && let Some(i) = self.pick(users, account)
        {
            return Some(i);
        }
        None
    }

    /// The name of the integration the keys map to.
    pub fn match_name(&self, keys: &MatchKeys<'_>) -> Option<&str> {
        self.resolve(keys).map(|i| self.names[i].as_str())
    }

    fn pick(&self, users: &[usize], account: Option<&str>) -> Option<usize> {
        match users {
            [] => None,
            [one] => Some(*one),
            [first, ..] => account
                .and_then(|acc| {
                    users
                        .iter()
                        .copied()
                        .find(|&i| self.accounts[i].as_deref().map(str::trim) == Some(acc))
                })
                .or(Some(*first)),
        }
    }
}

fn add_all(into: &mut Vec<usize>, users: &[usize]) {
    for &u in users {
        if !into.contains(&u) {
            into.push(u);
        }
    }
    into.sort_unstable();
}

/// Lower-cased host; SFMC `{tenant}.{auth|rest|soap}.marketingcloudapis.com` becomes `{tenant}.marketingcloudapis.com`.
pub fn host_key(host: &str) -> std::borrow::Cow<'_, str> {
    let lower: std::borrow::Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    };
    const SUFFIX: &str = ".marketingcloudapis.com";
    if let Some(prefix) = lower.strip_suffix(SUFFIX)
        && let Some((tenant, kind)) = prefix.rsplit_once('.')
        && matches!(kind, "auth" | "rest" | "soap")
    {
        return format!("{tenant}{SUFFIX}").into();
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sfmc_hosts_compare_by_tenant() {
        assert_eq!(
            host_key("MCabc.rest.marketingcloudapis.com"),
            "mcabc.marketingcloudapis.com"
        );
        assert_eq!(host_key("login.example.com"), "login.example.com");
    }
}
