//! go-yaml's defence against alias bombs ("billion laughs"), applied before the YAML file is
//! parsed into values: the YAML parser the `config` crate uses copies an anchored node at every
//! alias, so a 342-byte document of nine nested aliases of nine would become 9^9 nodes and
//! exhaust the memory of the machine.
//!
//! The rule is go-yaml v3's (the YAML library SFTPGo's viper uses), so a file SFTPGo loads is
//! loaded here and a file it refuses is refused: walking the document in order, count every
//! node decoded, aliases expanded (`decoded`), and every node decoded inside an alias's
//! expansion (`aliased`); the document is refused as soon as `aliased > 100`,
//! `decoded > 1000` and `aliased / decoded` exceeds the allowed ratio: 99% up to 400,000
//! decoded nodes, falling linearly to 10% at 4,000,000 and beyond. This needs no expansion:
//! the expanded size of each anchored node is computed once, when it ends.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

const RATIO_RANGE_LOW: u64 = 400_000;
const RATIO_RANGE_HIGH: u64 = 4_000_000;

/// go-yaml's `allowedAliasRatio`.
fn allowed_ratio(decoded: u64) -> f64 {
    if decoded <= RATIO_RANGE_LOW {
        0.99
    } else if decoded >= RATIO_RANGE_HIGH {
        0.10
    } else {
        0.99 - 0.89
            * ((decoded - RATIO_RANGE_LOW) as f64 / (RATIO_RANGE_HIGH - RATIO_RANGE_LOW) as f64)
    }
}

/// Why a document was refused.
#[derive(Debug)]
pub(super) struct ExcessiveAliasing {
    pub(super) decoded: u64,
    pub(super) aliased: u64,
}

/// Checks `text` against go-yaml's aliasing rule. A document the YAML parser cannot read passes:
/// the real parse reports that error.
pub(super) fn check(text: &str) -> Result<(), ExcessiveAliasing> {
    let mut parser = Parser::new_from_str(text);
    // Expanded size (nodes) of each anchored node, by anchor id.
    let mut anchors: HashMap<usize, u64> = HashMap::new();
    // Open collections: (anchor id, expanded size so far, itself included).
    let mut open: Vec<(usize, u64)> = Vec::new();
    let (mut decoded, mut aliased) = (0u64, 0u64);
    loop {
        let Ok((event, _)) = parser.next_token() else {
            return Ok(());
        };
        // The expanded size of a node that is complete now, with its anchor.
        let done: Option<(usize, u64)> = match event {
            Event::StreamEnd => return Ok(()),
            Event::Scalar(_, _, anchor, _) => {
                decoded += 1;
                Some((anchor, 1))
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                decoded += 1;
                open.push((anchor, 1));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => open.pop(),
            Event::Alias(id) => {
                let size = anchors.get(&id).copied().unwrap_or(0);
                decoded = decoded.saturating_add(1).saturating_add(size);
                aliased = aliased.saturating_add(size);
                if aliased > 100
                    && decoded > 1000
                    && aliased as f64 / decoded as f64 > allowed_ratio(decoded)
                {
                    return Err(ExcessiveAliasing { decoded, aliased });
                }
                Some((0, size.saturating_add(1)))
            }
            _ => None,
        };
        if let Some((anchor, size)) = done {
            if anchor != 0 {
                anchors.insert(anchor, size);
            }
            if let Some((_, parent)) = open.last_mut() {
                *parent = parent.saturating_add(size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item7_billion_laughs_is_refused() {
        let bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n\
                    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
                    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
                    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
                    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert_eq!(bomb.len(), 342);
        let err = check(bomb).unwrap_err();
        // Refused early (at the fourth level, as go-yaml), long before 9^9.
        assert!(err.decoded < 100_000, "{err:?}");
        assert!(err.aliased as f64 / err.decoded as f64 > 0.99, "{err:?}");
    }

    #[test]
    fn ordinary_aliases_pass() {
        let ok = "defaults: &d {timeout: 10, env: [A=1, B=2]}\ncommand: *d\nother: *d\n";
        assert!(check(ok).is_ok());
        // Many aliases of a small node: a lot of aliasing, but under go-yaml's ratio.
        let mut doc = String::from("x: &x [1, 2, 3]\nitems:\n");
        for i in 0..2000 {
            doc.push_str(&format!("  - {{n: {i}, a: b, c: d, e: f}}\n"));
        }
        for _ in 0..200 {
            doc.push_str("  - *x\n");
        }
        assert!(check(&doc).is_ok());
        // Unreadable YAML is left to the real parser.
        assert!(check("a: [unclosed").is_ok());
        assert!(check("a: *nowhere").is_ok());
    }
}
