//! Configured headers (spec 4.3 with D9, D10): validated once, matched against the hook URL once
//! when the match cannot depend on the generated query, and per event otherwise.

use hook_config::ConfigError;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::gourl::GoUrl;

/// Whether a header whose `url` is `prefix` applies to `url` (D9): `url` starts with `prefix`
/// and the prefix ends at a boundary, i.e. `url == prefix`, or `prefix` ends with `/`, or the
/// character after it in `url` is `/`, `?` or `#`. An empty prefix matches every URL. The
/// comparison is byte-exact and case-sensitive, as SFTPGo's.
///
/// `url` is the final request URL as Go prints it: scheme lower-cased, user-info kept, the
/// generated query and the fragment included.
///
/// ```
/// use hook_http::header_url_matches;
///
/// assert!(header_url_matches("https://h.example", "https://h.example/x?a=1"));
/// assert!(header_url_matches("https://h.example/api/", "https://h.example/api/x"));
/// assert!(header_url_matches("https://h.example/api", "https://h.example/api?a=1"));
/// assert!(!header_url_matches("https://h.example", "https://h.example.evil.net/"));
/// assert!(!header_url_matches("https://h.example/api", "https://h.example/apix"));
/// assert!(header_url_matches("", "http://anything/"));
/// ```
pub fn header_url_matches(prefix: &str, url: &str) -> bool {
    if prefix.is_empty() {
        return true;
    }
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    rest.is_empty() || prefix.ends_with('/') || rest.starts_with(['/', '?', '#'])
}

/// When a header entry applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// Decided from the URL without its query: always or never.
    Fixed(bool),
    /// The prefix reaches into the generated query: decided per event.
    PerEvent,
}

#[derive(Clone)]
struct Entry {
    name: HeaderName,
    value: HeaderValue,
    prefix: String,
    scope: Scope,
}

/// A configured header to validate: its position for error keys, and its three strings.
pub(crate) struct HeaderSource<'a> {
    pub(crate) key_prefix: String,
    pub(crate) name: &'a str,
    pub(crate) value: &'a str,
    pub(crate) url: &'a str,
}

/// The headers of every request of one hook.
#[derive(Clone)]
pub(crate) struct HeaderPlan {
    entries: Vec<Entry>,
    /// The complete header map when no entry depends on the query.
    fixed: Option<HeaderMap>,
    /// Defaults every request carries (User-Agent, Accept-Encoding).
    defaults: HeaderMap,
    /// `Authorization` from URL user-info, used unless a matching entry sets one.
    basic: Option<HeaderValue>,
}

impl HeaderPlan {
    /// Validates the entries (D10; entries with an empty name or value are dropped, as SFTPGo
    /// does; `Host` entries are ignored, as Go ignores them) and decides what can be decided.
    pub(crate) fn new(
        sources: &[HeaderSource<'_>],
        url: &GoUrl,
        defaults: HeaderMap,
    ) -> Result<HeaderPlan, ConfigError> {
        let mut entries = Vec::new();
        for src in sources {
            if src.name.is_empty() || src.value.is_empty() {
                continue;
            }
            let name = HeaderName::from_bytes(src.name.as_bytes()).map_err(|_| {
                ConfigError::invalid(
                    format!("{}.key", src.key_prefix),
                    format!("{:?} is not a valid header name", src.name),
                )
            })?;
            if src
                .value
                .bytes()
                .any(|b| b == b'\r' || b == b'\n' || b == 0)
            {
                return Err(ConfigError::invalid(
                    format!("{}.value", src.key_prefix),
                    "contains CR, LF or NUL (value not shown)",
                ));
            }
            let mut value = HeaderValue::from_bytes(src.value.as_bytes()).map_err(|_| {
                ConfigError::invalid(
                    format!("{}.value", src.key_prefix),
                    "contains a control character (value not shown)",
                )
            })?;
            value.set_sensitive(true);
            if name == header::HOST {
                continue;
            }
            let scope = scope_of(src.url, url);
            entries.push(Entry {
                name,
                value,
                prefix: src.url.to_owned(),
                scope,
            });
        }
        let basic = url.user.as_ref().map(|user| {
            let mut v = HeaderValue::from_bytes(&user.basic_authorization())
                .expect("base64 is a valid header value");
            v.set_sensitive(true);
            v
        });
        let mut plan = HeaderPlan {
            entries,
            fixed: None,
            defaults,
            basic,
        };
        if plan.entries.iter().all(|e| e.scope != Scope::PerEvent) {
            plan.fixed = Some(plan.build(|_| unreachable!("no per-event entry")));
        }
        Ok(plan)
    }

    /// The headers for a request whose Go-printed URL is produced by `final_url` (called only
    /// when an entry depends on the query).
    pub(crate) fn headers(&self, final_url: impl FnOnce() -> String) -> HeaderMap {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        let url = final_url();
        self.build(|prefix| header_url_matches(prefix, &url))
    }

    fn build(&self, mut matches: impl FnMut(&str) -> bool) -> HeaderMap {
        let mut map = self.defaults.clone();
        let mut configured_auth = false;
        for entry in &self.entries {
            let applies = match entry.scope {
                Scope::Fixed(applies) => applies,
                Scope::PerEvent => matches(&entry.prefix),
            };
            if applies {
                configured_auth |= entry.name == header::AUTHORIZATION;
                map.insert(entry.name.clone(), entry.value.clone());
            }
        }
        if let (Some(basic), false) = (&self.basic, configured_auth) {
            map.insert(header::AUTHORIZATION, basic.clone());
        }
        map
    }

    /// Configured header names (for `Debug`), values never.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// Whether any entry is decided per event.
    #[cfg(test)]
    pub(crate) fn is_per_event(&self) -> bool {
        self.fixed.is_none()
    }
}

/// Decides an entry from the part of the URL before the generated query when it can: the final
/// URL is `string_base + "?" + query + fragment`, and the query is never empty.
fn scope_of(prefix: &str, url: &GoUrl) -> Scope {
    if prefix.is_empty() {
        return Scope::Fixed(true);
    }
    let base = url.string_base.as_str();
    if prefix.len() <= base.len() {
        let Some(rest) = base.strip_prefix(prefix) else {
            return Scope::Fixed(false);
        };
        // `rest` empty: the next character of the final URL is the `?` of the query.
        let boundary =
            rest.is_empty() || prefix.ends_with('/') || rest.starts_with(['/', '?', '#']);
        return Scope::Fixed(boundary);
    }
    if prefix.starts_with(base) && prefix.as_bytes()[base.len()] == b'?' {
        Scope::PerEvent
    } else {
        Scope::Fixed(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(url: &str, entries: &[(&str, &str, &str)]) -> HeaderPlan {
        let go = GoUrl::parse(url).unwrap();
        let sources: Vec<_> = entries
            .iter()
            .enumerate()
            .map(|(i, (name, value, url))| HeaderSource {
                key_prefix: format!("http.headers[{i}]"),
                name,
                value,
                url,
            })
            .collect();
        HeaderPlan::new(&sources, &go, HeaderMap::new()).unwrap()
    }

    #[test]
    fn scope_is_fixed_unless_the_prefix_reaches_the_query() {
        let go = GoUrl::parse("http://u:p@h.example/api/hook").unwrap();
        let cases = [
            ("", Scope::Fixed(true)),
            ("http://u:p@h.example", Scope::Fixed(true)),
            ("http://u:p@h.example/", Scope::Fixed(true)),
            ("http://u:p@h.example/api", Scope::Fixed(true)),
            ("http://u:p@h.example/ap", Scope::Fixed(false)),
            ("http://u:p@h.example/api/hook", Scope::Fixed(true)),
            ("http://u:p@h.example/api/hook?", Scope::PerEvent),
            (
                "http://u:p@h.example/api/hook?connection_duration=1",
                Scope::PerEvent,
            ),
            ("http://u:p@h.example/api/hookx", Scope::Fixed(false)),
            ("http://h.example/api", Scope::Fixed(false)),
            ("HTTP://u:p@h.example/api", Scope::Fixed(false)),
        ];
        for (prefix, want) in cases {
            assert_eq!(scope_of(prefix, &go), want, "{prefix:?}");
        }
    }

    #[test]
    fn later_entry_wins_and_user_info_yields_to_configured_authorization() {
        let p = plan(
            "http://u:p@h/x",
            &[
                ("X-Api-Key", "one", ""),
                ("x-api-key", "two", ""),
                ("Host", "evil", ""),
            ],
        );
        let h = p.headers(|| unreachable!());
        assert_eq!(h.get_all("x-api-key").iter().count(), 1);
        assert_eq!(h["x-api-key"], "two");
        assert_eq!(h["authorization"], "Basic dTpw");
        assert!(h.get("host").is_none());

        let p = plan("http://u:p@h/x", &[("Authorization", "Bearer t", "")]);
        assert_eq!(p.headers(|| unreachable!())["authorization"], "Bearer t");

        // An Authorization entry scoped elsewhere does not replace the user-info.
        let p = plan(
            "http://u:p@h/x",
            &[("Authorization", "Bearer t", "http://other/")],
        );
        assert_eq!(p.headers(|| unreachable!())["authorization"], "Basic dTpw");
    }

    #[test]
    fn per_event_entries_see_the_final_url() {
        // D9: inside the query only the whole URL (or up to the fragment) is a boundary.
        let p = plan(
            "http://h/x#f",
            &[("X-A", "1", "http://h/x?connection_duration=5&ip=1")],
        );
        assert!(p.is_per_event());
        assert!(
            p.headers(|| "http://h/x?connection_duration=5&ip=1#f".into())
                .contains_key("x-a")
        );
        assert!(
            p.headers(|| "http://h/x?connection_duration=5&ip=1".into())
                .contains_key("x-a")
        );
        assert!(
            !p.headers(|| "http://h/x?connection_duration=5&ip=10".into())
                .contains_key("x-a")
        );
        assert!(
            !p.headers(|| "http://h/x?connection_duration=50&ip=1".into())
                .contains_key("x-a")
        );
    }

    #[test]
    fn empty_entries_are_dropped_and_bad_ones_rejected_without_the_value() {
        let p = plan("http://h/x", &[("", "v", ""), ("K", "", "")]);
        assert!(p.names().is_empty());
        let go = GoUrl::parse("http://h/").unwrap();
        let bad = [
            ("Bad Key", "v", "http.headers[0].key"),
            ("K", "s3cret\r\nX: y", "http.headers[0].value"),
        ];
        for (name, value, key) in bad {
            let src = HeaderSource {
                key_prefix: "http.headers[0]".into(),
                name,
                value,
                url: "",
            };
            let err = HeaderPlan::new(&[src], &go, HeaderMap::new())
                .err()
                .unwrap();
            assert_eq!(err.key(), key);
            assert!(!err.to_string().contains("s3cret"), "{err}");
        }
    }
}
