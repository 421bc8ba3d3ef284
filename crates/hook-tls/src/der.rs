//! Just enough DER to read an X.509 certificate's issuer, subject and validity: what picking a
//! client certificate by the server's CA names (D14) and trusting a listed self-signed server
//! certificate (D13) need. Everything else is left to webpki.

/// One TLV: its tag, its content and the whole encoding; plus what follows it.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

fn read_tlv(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        (
            bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b)),
            2 + n,
        )
    };
    let end = header.checked_add(len)?;
    let whole = input.get(..end)?;
    Some((
        Tlv {
            tag,
            content: &whole[header..],
            whole,
        },
        &input[end..],
    ))
}

fn read_expected(input: &[u8], tag: u8) -> Option<(Tlv<'_>, &[u8])> {
    let (tlv, rest) = read_tlv(input)?;
    (tlv.tag == tag).then_some((tlv, rest))
}

const SEQUENCE: u8 = 0x30;

/// The parts of a certificate we look at.
pub(crate) struct CertInfo<'a> {
    /// The issuer `Name`, whole DER (with its SEQUENCE header), as TLS CA hints carry it.
    pub(crate) issuer: &'a [u8],
    /// Validity start, Unix seconds.
    pub(crate) not_before: i64,
    /// Validity end, Unix seconds.
    pub(crate) not_after: i64,
}

/// Reads issuer and validity of a DER certificate.
pub(crate) fn parse_certificate(der: &[u8]) -> Option<CertInfo<'_>> {
    let (cert, _) = read_expected(der, SEQUENCE)?;
    let (tbs, _) = read_expected(cert.content, SEQUENCE)?;
    let mut rest = tbs.content;
    let (first, after) = read_tlv(rest)?;
    if first.tag == 0xa0 {
        rest = after; // [0] EXPLICIT version
    }
    let (_serial, rest) = read_expected(rest, 0x02)?;
    let (_algorithm, rest) = read_expected(rest, SEQUENCE)?;
    let (issuer, rest) = read_expected(rest, SEQUENCE)?;
    let (validity, _) = read_expected(rest, SEQUENCE)?;
    let (not_before, rest) = read_tlv(validity.content)?;
    let (not_after, _) = read_tlv(rest)?;
    Some(CertInfo {
        issuer: issuer.whole,
        not_before: parse_time(&not_before)?,
        not_after: parse_time(&not_after)?,
    })
}

/// UTCTime (`YYMMDDHHMMSSZ`, 1950-2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn parse_time(tlv: &Tlv<'_>) -> Option<i64> {
    let text = std::str::from_utf8(tlv.content).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tlv.tag, digits.len()) {
        (0x17, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<u32>().ok();
    Some(hook_core::civil::unix_seconds(
        year,
        field(0)?,
        field(2)?,
        field(4)?,
        field(6)?,
        field(8)?,
    ))
}

/// Whether a CA name sent by a server (a DER `Name`, normally with its SEQUENCE header) is the
/// given issuer `Name` (whole DER). Names without the header are compared with the content.
pub(crate) fn same_name(hint: &[u8], issuer_whole: &[u8]) -> bool {
    if hint == issuer_whole {
        return true;
    }
    read_tlv(issuer_whole).is_some_and(|(tlv, _)| tlv.content == hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_rejected() {
        assert!(parse_certificate(b"").is_none());
        assert!(parse_certificate(&[0x30, 0x82, 0xff]).is_none());
        assert!(parse_certificate(&[0x30, 0x00]).is_none());
    }

    #[test]
    fn name_comparison_with_and_without_header() {
        let whole = [0x30, 0x03, 0x01, 0x02, 0x03];
        assert!(same_name(&whole, &whole));
        assert!(same_name(&[0x01, 0x02, 0x03], &whole));
        assert!(!same_name(&[0x01, 0x02], &whole));
    }
}
