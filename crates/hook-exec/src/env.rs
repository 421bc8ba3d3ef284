//! The program's environment, built as SFTPGo builds it (spec 3.2).
//!
//! Go's `os/exec` passes `cmd.Env` through `dedupEnv`: entries are scanned from the last to the
//! first, the first time a key is seen (that is, its **last** occurrence) the entry is kept, and
//! the survivors are put back in their original relative order. So each key appears once, with its
//! last value, at the position of its last occurrence. Verified against Go 1.19.8:
//! `[A=1 B=2 C=3 A=4]` reaches the child as `B=2 C=3 A=4`.

use std::collections::HashSet;
use std::ffi::CString;

use hook_core::Field;

/// The key of `kv` as Go's `dedupEnv` computes it: the bytes before the first `=`, except that a
/// single leading `=` belongs to the key (`=C:=x` has key `=C:`); `None` when there is no `=`.
pub(crate) fn go_env_key(kv: &[u8]) -> Option<&[u8]> {
    let i = kv.iter().position(|&b| b == b'=')?;
    let i = if i == 0 {
        kv[1..].iter().position(|&b| b == b'=').map_or(0, |j| j + 1)
    } else {
        i
    };
    Some(&kv[..i])
}

/// Go's `dedupEnv` (case-sensitive, as on Unix): last occurrence wins and keeps its position;
/// entries without `=` are kept as they are, empty entries dropped.
pub(crate) fn dedup_last_wins(entries: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(entries.len());
    let mut out = Vec::with_capacity(entries.len());
    for kv in entries.into_iter().rev() {
        match go_env_key(&kv) {
            None if kv.is_empty() => {}
            None => out.push(kv),
            Some(key) => {
                if seen.insert(key.to_vec()) {
                    out.push(kv);
                }
            }
        }
    }
    out.reverse();
    out
}

/// The configured part of the environment, computed once per hook: `entries` (global `command.env`
/// then the matched entry's `env`, `KEY=value` each) de-duplicated as Go does, without the four
/// `SFTPGO_CONNECTION_*` variables, which are appended per event and always win.
///
/// Dropping a configured `SFTPGO_CONNECTION_IP` here and appending ours after the rest gives
/// exactly Go's result for `entries ++ [the four]`: ours are the last occurrences.
pub(crate) fn configured_env(entries: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut env = dedup_last_wins(entries);
    env.retain(|kv| {
        go_env_key(kv).is_none_or(|k| !Field::ENV_ORDER.iter().any(|f| f.env_var().as_bytes() == k))
    });
    env
}

/// `NAME=value` for one of the four variables; `None` when the value holds a NUL byte.
pub(crate) fn event_var(field: Field, value: &str) -> Option<CString> {
    let name = field.env_var();
    let mut kv = Vec::with_capacity(name.len() + 1 + value.len() + 1);
    kv.extend_from_slice(name.as_bytes());
    kv.push(b'=');
    kv.extend_from_slice(value.as_bytes());
    CString::new(kv).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn s(items: Vec<Vec<u8>>) -> Vec<String> {
        items
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect()
    }

    #[test]
    fn keys_follow_go() {
        assert_eq!(go_env_key(b"A=1"), Some(&b"A"[..]));
        assert_eq!(go_env_key(b"A="), Some(&b"A"[..]));
        assert_eq!(go_env_key(b"A=b=c"), Some(&b"A"[..]));
        assert_eq!(go_env_key(b"=x"), Some(&b""[..]));
        assert_eq!(go_env_key(b"=a=b"), Some(&b"=a"[..]));
        assert_eq!(go_env_key(b"NOEQ"), None);
    }

    #[test]
    fn dedup_matches_go_1_19_output() {
        // The exact list and result observed with Go 1.19.8's os/exec (see the module docs).
        let got = dedup_last_wins(v(&[
            "A=1",
            "B=2",
            "C=3",
            "A=4",
            "SFTPGO_CONNECTION_IP=evil",
            "D=5",
            "SFTPGO_CONNECTION_IP=1.2.3.4",
            "=x",
            "=a=b",
            "NOEQ",
            "",
        ]));
        assert_eq!(
            s(got),
            [
                "B=2",
                "C=3",
                "A=4",
                "D=5",
                "SFTPGO_CONNECTION_IP=1.2.3.4",
                "=x",
                "=a=b",
                "NOEQ"
            ]
        );
    }

    #[test]
    fn configured_env_drops_our_four_names() {
        let got = configured_env(v(&[
            "SFTPGO_CONNECTION_USERNAME=root",
            "A=1",
            "SFTPGO_CONNECTION_PROTOCOL=HTTP",
            "A=2",
            "SFTPGO_CONNECTION_IPX=kept",
        ]));
        assert_eq!(s(got), ["A=2", "SFTPGO_CONNECTION_IPX=kept"]);
    }

    #[test]
    fn event_var_rejects_nul() {
        assert_eq!(
            event_var(Field::Username, "bob").unwrap().to_bytes(),
            b"SFTPGO_CONNECTION_USERNAME=bob"
        );
        assert!(event_var(Field::Username, "b\0b").is_none());
    }
}
