//! The protocol a connection used, as SFTPGo names it.

use std::fmt;
use std::str::FromStr;

/// The protocol of the connection that ended.
///
/// It prints exactly as SFTPGo spells it (`SFTP`, `SCP`, `SSH`, `FTP`, `DAV`, `HTTP`, `OIDC`) and parses
/// back only from those exact, case-sensitive strings, because SFTPGo compares them byte for byte.
///
/// ```
/// use hook_core::Protocol;
///
/// assert_eq!(Protocol::Sftp.to_string(), "SFTP");
/// assert_eq!("SCP".parse::<Protocol>(), Ok(Protocol::Scp));
/// assert!("sftp".parse::<Protocol>().is_err());
/// assert!(Protocol::Ftp.fires_by_default());
/// assert!(!Protocol::Dav.fires_by_default());
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// An SSH channel running the `sftp` subsystem.
    Sftp,
    /// An SSH exec channel running `scp`.
    Scp,
    /// Any other SSH exec command (`md5sum`, `rsync`, `git`, ...).
    Ssh,
    /// An FTP (or FTPS) control connection.
    Ftp,
    /// A WebDAV connection (never fires a hook in SFTPGo).
    Dav,
    /// The HTTP client or REST API (never fires a hook in SFTPGo).
    Http,
    /// An OpenID Connect login (never fires a hook in SFTPGo).
    Oidc,
}

impl Protocol {
    /// Every protocol, in declaration order.
    pub const ALL: [Protocol; 7] = [
        Protocol::Sftp,
        Protocol::Scp,
        Protocol::Ssh,
        Protocol::Ftp,
        Protocol::Dav,
        Protocol::Http,
        Protocol::Oidc,
    ];

    /// The protocols SFTPGo fires a post-disconnect hook for: `SFTP`, `SCP`, `SSH` and `FTP`
    /// (spec 1.2). The dispatcher uses this set unless a server widens it.
    pub const FIRES_BY_DEFAULT: [Protocol; 4] =
        [Protocol::Sftp, Protocol::Scp, Protocol::Ssh, Protocol::Ftp];

    /// The exact SFTPGo spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Sftp => "SFTP",
            Protocol::Scp => "SCP",
            Protocol::Ssh => "SSH",
            Protocol::Ftp => "FTP",
            Protocol::Dav => "DAV",
            Protocol::Http => "HTTP",
            Protocol::Oidc => "OIDC",
        }
    }

    /// Whether SFTPGo fires a post-disconnect hook for this protocol (`SFTP`, `SCP`, `SSH`, `FTP`).
    pub const fn fires_by_default(self) -> bool {
        matches!(
            self,
            Protocol::Sftp | Protocol::Scp | Protocol::Ssh | Protocol::Ftp
        )
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = ParseProtocolError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| ParseProtocolError {
                input: s.to_owned(),
            })
    }
}

/// The error returned when a string is not one of SFTPGo's protocol names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseProtocolError {
    input: String,
}

impl ParseProtocolError {
    /// The text that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown protocol {:?}: expected one of SFTP, SCP, SSH, FTP, DAV, HTTP, OIDC (case-sensitive)",
            self.input
        )
    }
}

impl std::error::Error for ParseProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_protocol() {
        for p in Protocol::ALL {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
    }

    #[test]
    fn parsing_is_case_sensitive_and_exact() {
        for bad in [
            "sftp",
            "Sftp",
            " SFTP",
            "SFTP ",
            "",
            "HTTPShare",
            "DataRetention",
        ] {
            let err = bad.parse::<Protocol>().unwrap_err();
            assert_eq!(err.input(), bad);
            assert!(err.to_string().contains("unknown protocol"));
        }
    }

    #[test]
    fn default_filter_is_sftpgo_set() {
        let firing: Vec<_> = Protocol::ALL
            .into_iter()
            .filter(|p| p.fires_by_default())
            .collect();
        assert_eq!(firing, Protocol::FIRES_BY_DEFAULT);
    }
}
