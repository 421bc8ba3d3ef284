//! The final query, precompiled: the hook URL's existing pairs and the four generated keys merged
//! in Go's sorted order once, so an event only escapes its four values into a template.

use std::collections::BTreeMap;

use hook_core::{Field, SftpgoFields};

use crate::query::{GoQuery, query_escape_into};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value(Field),
}

/// `GoQuery::parse(existing)` plus `Add(ip)`, `Add(protocol)`, `Add(username)`,
/// `Add(connection_duration)`, then `Encode()`, with the four values left as holes.
#[derive(Clone, Debug)]
pub(crate) struct QueryTemplate {
    parts: Vec<Part>,
    literal_len: usize,
}

/// The order SFTPGo adds the four keys (only matters within one key, which never happens).
const ADD_ORDER: [Field; 4] = [Field::Ip, Field::Protocol, Field::Username, Field::Duration];

impl QueryTemplate {
    pub(crate) fn new(existing_raw_query: &str) -> QueryTemplate {
        let existing = GoQuery::parse(existing_raw_query);
        let mut keys: BTreeMap<Vec<u8>, Vec<Part>> = BTreeMap::new();
        for (key, values) in existing.iter() {
            let parts = values
                .iter()
                .map(|v| {
                    let mut s = String::new();
                    query_escape_into(&mut s, v);
                    Part::Literal(s)
                })
                .collect();
            keys.insert(key.to_vec(), parts);
        }
        for field in ADD_ORDER {
            keys.entry(field.query_key().as_bytes().to_vec())
                .or_default()
                .push(Part::Value(field));
        }
        let mut parts: Vec<Part> = Vec::new();
        let push_literal = |parts: &mut Vec<Part>, text: &str| match parts.last_mut() {
            Some(Part::Literal(s)) => s.push_str(text),
            _ => parts.push(Part::Literal(text.to_owned())),
        };
        let mut first = true;
        for (key, values) in &keys {
            let mut escaped_key = String::new();
            query_escape_into(&mut escaped_key, key);
            for value in values {
                if !first {
                    push_literal(&mut parts, "&");
                }
                first = false;
                push_literal(&mut parts, &escaped_key);
                push_literal(&mut parts, "=");
                match value {
                    Part::Literal(s) => push_literal(&mut parts, s),
                    Part::Value(f) => parts.push(Part::Value(*f)),
                }
            }
        }
        let literal_len = parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.len(),
                Part::Value(_) => 0,
            })
            .sum();
        QueryTemplate { parts, literal_len }
    }

    /// The encoded query for one event.
    pub(crate) fn render(&self, fields: &SftpgoFields<'_>) -> String {
        let mut out = String::with_capacity(self.literal_len + 96);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Value(field) => query_escape_into(&mut out, fields.get(*field).as_bytes()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hook_core::{DisconnectEvent, Protocol};

    use super::*;

    #[test]
    fn agrees_with_the_generic_encoder() {
        let event =
            DisconnectEvent::new("10.0.0.1", Protocol::Ssh, "a b&c", Duration::from_millis(7));
        let fields = event.sftpgo_fields();
        for existing in [
            "",
            "ip=1",
            "z=1&a=2&ip=0",
            "username=x&connection_duration=&Z=%FF",
            "a;b=1&&c",
        ] {
            let mut q = GoQuery::parse(existing);
            for f in ADD_ORDER {
                q.add(f.query_key(), fields.get(f));
            }
            assert_eq!(
                QueryTemplate::new(existing).render(&fields),
                q.encode(),
                "{existing:?}"
            );
        }
    }
}
