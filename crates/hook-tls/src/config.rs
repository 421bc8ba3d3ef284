//! The rustls client configuration (spec 4.6 with D13, D14): system roots plus the configured CA
//! files, a verifier that also trusts a listed self-signed server certificate, mutual TLS with a
//! certificate chosen per handshake, and `skip_tls_verify`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hook_config::{ConfigError, ConfigErrorKind};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::der;

/// A mutual-TLS pair to load: the key to name in errors and the two paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPairSource {
    /// The pair's configuration key, e.g. `http.certificates[0]`: errors name `<key>.cert`,
    /// `<key>.key` or the pair itself.
    pub key: String,
    /// The PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key.
    pub private_key: PathBuf,
}

/// What a TLS client configuration is built from (paths already resolved against the
/// configuration directory).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSources {
    /// The configuration section, named in errors about the whole set: `http`, `nats`.
    pub section: String,
    /// `(config key, path)` of each CA file, e.g. `("http.ca_certificates[0]", "ca.pem")`.
    pub ca_files: Vec<(String, PathBuf)>,
    /// The client pairs offered for mutual TLS, in order of preference.
    pub key_pairs: Vec<KeyPairSource>,
    /// `skip_tls_verify`: any server certificate and name (the handshake signature is still
    /// checked).
    pub skip_verify: bool,
}

impl TlsSources {
    /// The sources of a section's `ca_certificates`, `certificates` (`(cert, key)` pairs) and
    /// `skip_tls_verify` keys, named `<section>.ca_certificates[i]` and
    /// `<section>.certificates[i]` in errors.
    pub fn from_section<C, P, K>(
        section: &str,
        ca_files: impl IntoIterator<Item = C>,
        pairs: impl IntoIterator<Item = (P, K)>,
        skip_verify: bool,
    ) -> TlsSources
    where
        C: Into<PathBuf>,
        P: Into<PathBuf>,
        K: Into<PathBuf>,
    {
        TlsSources {
            section: section.to_owned(),
            ca_files: ca_files
                .into_iter()
                .enumerate()
                .map(|(i, path)| (format!("{section}.ca_certificates[{i}]"), path.into()))
                .collect(),
            key_pairs: pairs
                .into_iter()
                .enumerate()
                .map(|(i, (cert, key))| KeyPairSource {
                    key: format!("{section}.certificates[{i}]"),
                    cert: cert.into(),
                    private_key: key.into(),
                })
                .collect(),
            skip_verify,
        }
    }
}

/// Go's `IsFileInputValid`: after `filepath.Clean`, `.` and `..` are not files (so `""`, `.`,
/// `a/..`, `..` are rejected; `../x.pem` is fine).
pub fn is_file_input_valid(path: &Path) -> bool {
    use std::path::Component;
    let mut depth: Vec<Component<'_>> = Vec::new();
    let mut rooted = false;
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => rooted = true,
            Component::CurDir => {}
            Component::ParentDir => match depth.last() {
                Some(Component::Normal(_)) => {
                    depth.pop();
                }
                _ if rooted => {}
                _ => depth.push(c),
            },
            Component::Normal(_) => depth.push(c),
        }
    }
    let cleaned_is_dot = depth.is_empty() && !rooted;
    let cleaned_is_dotdot = !rooted && depth.len() == 1 && depth[0] == Component::ParentDir;
    !(cleaned_is_dot || cleaned_is_dotdot)
}

fn io_error(key: &str, what: &str, path: &Path, err: impl std::fmt::Display) -> ConfigError {
    ConfigError::new(
        ConfigErrorKind::Io,
        key,
        format!(
            "unable to load {what} {:?}: {err}",
            path.display().to_string()
        ),
    )
}

fn read_file(key: &str, what: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    if !is_file_input_valid(path) {
        return Err(ConfigError::invalid(
            key,
            format!(
                "unable to load invalid {what}: {:?}",
                path.display().to_string()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| io_error(key, what, path, e))
}

fn read_certificates(
    key: &str,
    what: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_file(key, what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            ConfigError::invalid(
                key,
                format!("{:?} is not valid PEM: {e}", path.display().to_string()),
            )
        })?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            key,
            format!("{:?} holds no PEM certificate", path.display().to_string()),
        ));
    }
    Ok(certs)
}

/// The system's trust anchors, read once per process (possibly none).
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let result = rustls_native_certs::load_native_certs();
        if result.certs.is_empty() {
            tracing::debug!(
                target: "hook_tls",
                errors = result.errors.len(),
                "no system trust store found: only configured CA certificates are trusted"
            );
        }
        result.certs
    })
}

/// Builds the client configuration: TLS 1.3 and 1.2 on ring; the system roots plus
/// `ca_files`, verified as Go's `crypto/tls` does ([`TlsSources::skip_verify`] aside); the
/// `key_pairs` offered per handshake as Go's `tls.Config.Certificates` are. No ALPN: the caller
/// sets its protocols. Every file is read now; an error names its key and path.
pub fn client_config(sources: &TlsSources) -> Result<ClientConfig, ConfigError> {
    let section = sources.section.as_str();
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let mut roots = RootCertStore::empty();
    let _ = roots.add_parsable_certificates(native_roots().iter().cloned());
    let mut pinned = Vec::new();
    for (key, path) in &sources.ca_files {
        for cert in read_certificates(key, "CA certificate", path)? {
            roots.add(cert.clone()).map_err(|e| {
                ConfigError::invalid(
                    key.as_str(),
                    format!(
                        "unable to add CA certificate {:?} to the trusted certificates: {e}",
                        path.display().to_string()
                    ),
                )
            })?;
            pinned.push(cert);
        }
    }
    let webpki = if roots.is_empty() {
        None
    } else {
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| {
                    ConfigError::invalid(format!("{section}.ca_certificates"), format!("{e}"))
                })?;
        Some(verifier)
    };
    let verifier = Arc::new(GoCompatibleVerifier {
        webpki,
        pinned,
        algorithms: provider.signature_verification_algorithms,
        skip: sources.skip_verify,
    });

    let mut pairs = Vec::new();
    for pair in &sources.key_pairs {
        let chain = read_certificates(&format!("{}.cert", pair.key), "certificate", &pair.cert)?;
        let key_pem = read_file(&format!("{}.key", pair.key), "key", &pair.private_key)?;
        let describe = || {
            format!(
                "unable to load key pair {:?}, {:?}",
                pair.cert.display().to_string(),
                pair.private_key.display().to_string()
            )
        };
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| ConfigError::invalid(pair.key.as_str(), format!("{}: {e}", describe())))?;
        let certified = CertifiedKey::from_der(chain, private_key, &provider)
            .map_err(|e| ConfigError::invalid(pair.key.as_str(), format!("{}: {e}", describe())))?;
        let issuers = certified
            .cert
            .iter()
            .filter_map(|c| der::parse_certificate(c.as_ref()).map(|info| info.issuer.to_vec()))
            .collect();
        pairs.push(ClientPair {
            key: Arc::new(certified),
            issuers,
        });
    }

    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConfigError::invalid(section, format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(if pairs.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_resolver(Arc::new(PairResolver { pairs }))
    })
}

/// Verifies as Go's `crypto/tls` does with SFTPGo's settings: webpki with the system roots and
/// the configured CAs; also a server certificate byte-identical to a configured CA certificate
/// (Go accepts a leaf that is itself in the root pool, which webpki refuses for a `CA:TRUE`
/// certificate), still checking its host name and validity period (D13); with `skip_tls_verify`,
/// any certificate. The handshake signature is always checked.
#[derive(Debug)]
struct GoCompatibleVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pinned: Vec<CertificateDer<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
    skip: bool,
}

impl ServerCertVerifier for GoCompatibleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.skip {
            return Ok(ServerCertVerified::assertion());
        }
        let error = match &self.webpki {
            Some(webpki) => {
                match webpki.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ) {
                    Ok(verified) => return Ok(verified),
                    Err(e) => e,
                }
            }
            None => rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        };
        if !self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Err(error);
        }
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        let info = der::parse_certificate(end_entity.as_ref()).ok_or(
            rustls::Error::InvalidCertificate(CertificateError::BadEncoding),
        )?;
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        if now < info.not_before {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet,
            ));
        }
        if now > info.not_after {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

struct ClientPair {
    key: Arc<CertifiedKey>,
    /// Issuer names (whole DER) of every certificate of the chain.
    issuers: Vec<Vec<u8>>,
}

/// D14, as Go's `tls.Config.Certificates`: per handshake, the first pair whose key can sign with a
/// scheme the server accepts and, when the server names acceptable CAs, one of whose chain
/// certificates was issued by one of them; when the server names none, the first pair whose key
/// fits. When no pair qualifies, no certificate is sent (Go's "no acceptable certificate found"),
/// and a server that requires one refuses the handshake.
struct PairResolver {
    pairs: Vec<ClientPair>,
}

impl std::fmt::Debug for PairResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairResolver")
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

impl ResolvesClientCert for PairResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let fits = |p: &&ClientPair| p.key.key.choose_scheme(sigschemes).is_some();
        let named = |p: &&ClientPair| {
            p.issuers
                .iter()
                .any(|issuer| root_hint_subjects.iter().any(|h| der::same_name(h, issuer)))
        };
        let mut candidates = self.pairs.iter().filter(fits);
        let chosen = if root_hint_subjects.is_empty() {
            candidates.next()
        } else {
            candidates.find(named)
        };
        chosen.map(|p| p.key.clone())
    }

    fn has_certs(&self) -> bool {
        !self.pairs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_input_validation_matches_go() {
        for bad in ["", ".", "./", "a/..", "..", "a/../..", "./.."] {
            assert!(
                !is_file_input_valid(Path::new(bad)),
                "{bad:?} should be invalid"
            );
        }
        for ok in [
            "../x.pem",
            "a.pem",
            "/etc/ssl/a.pem",
            "/",
            "a/../b.pem",
            "/..",
        ] {
            assert!(is_file_input_valid(Path::new(ok)), "{ok:?} should be valid");
        }
    }

    fn verifier(pinned: Vec<CertificateDer<'static>>, skip: bool) -> GoCompatibleVerifier {
        let provider = rustls::crypto::ring::default_provider();
        GoCompatibleVerifier {
            webpki: None,
            pinned,
            algorithms: provider.signature_verification_algorithms,
            skip,
        }
    }

    /// A self-signed `CA:TRUE` certificate for `localhost`, valid between the two years.
    fn self_signed(from: i32, to: i32) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn check(
        v: &GoCompatibleVerifier,
        cert: &CertificateDer<'_>,
        host: &str,
    ) -> Result<(), rustls::Error> {
        let name = ServerName::try_from(host.to_owned()).unwrap();
        let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_800_000_000)); // 2027
        v.verify_server_cert(cert, &[], &name, &[], now).map(|_| ())
    }

    #[test]
    fn pinned_certificates_are_checked_for_name_and_validity() {
        let current = self_signed(2020, 2040);
        let expired = self_signed(2000, 2010);
        let future = self_signed(2035, 2040);
        let v = verifier(
            vec![current.clone(), expired.clone(), future.clone()],
            false,
        );
        assert_eq!(check(&v, &current, "localhost"), Ok(()));
        assert!(matches!(
            check(&v, &current, "other.example"),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForNameContext { .. }
            ))
        ));
        assert_eq!(
            check(&v, &expired, "localhost"),
            Err(rustls::Error::InvalidCertificate(CertificateError::Expired))
        );
        assert_eq!(
            check(&v, &future, "localhost"),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet
            ))
        );
    }

    #[test]
    fn without_any_root_only_pinned_certificates_pass() {
        let listed = self_signed(2020, 2040);
        let other = self_signed(2020, 2040);
        let v = verifier(vec![listed.clone()], false);
        assert_eq!(check(&v, &listed, "localhost"), Ok(()));
        assert_eq!(
            check(&v, &other, "localhost"),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        );
        // skip_tls_verify: anything, any name.
        let skip = verifier(Vec::new(), true);
        assert_eq!(check(&skip, &other, "other.example"), Ok(()));
    }

    #[test]
    fn issuer_and_validity_are_read_from_der() {
        let cert = self_signed(2020, 2040);
        let info = der::parse_certificate(cert.as_ref()).unwrap();
        assert_eq!(
            info.not_before,
            hook_core::civil::unix_seconds(2020, 1, 1, 0, 0, 0)
        );
        assert_eq!(
            info.not_after,
            hook_core::civil::unix_seconds(2040, 1, 1, 0, 0, 0)
        );
        assert_eq!(info.issuer.first(), Some(&0x30));
    }

    #[test]
    fn every_bad_file_is_an_error_naming_its_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_file = dir.path().join("client.pem");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        let ca = |path: &Path| TlsSources {
            section: "nats".into(),
            ca_files: vec![("nats.ca_certificates[0]".into(), path.to_owned())],
            ..TlsSources::default()
        };
        let pair = |cert: &Path, private_key: &Path| TlsSources {
            section: "nats".into(),
            key_pairs: vec![KeyPairSource {
                key: "nats.certificates[0]".into(),
                cert: cert.to_owned(),
                private_key: private_key.to_owned(),
            }],
            ..TlsSources::default()
        };
        let cases = [
            (
                ca(Path::new("")),
                "nats.ca_certificates[0]",
                "unable to load invalid CA certificate",
            ),
            (
                ca(&dir.path().join("missing.pem")),
                "nats.ca_certificates[0]",
                "missing.pem",
            ),
            (
                ca(&not_pem),
                "nats.ca_certificates[0]",
                "holds no PEM certificate",
            ),
            (
                pair(&not_pem, &not_pem),
                "nats.certificates[0].cert",
                "holds no PEM certificate",
            ),
            (
                pair(&cert_file, &cert_file),
                "nats.certificates[0]",
                "unable to load key pair",
            ),
            (
                pair(&cert_file, &dir.path().join("nokey.pem")),
                "nats.certificates[0].key",
                "nokey.pem",
            ),
        ];
        for (sources, key, text) in cases {
            let err = client_config(&sources).unwrap_err();
            assert_eq!(err.key(), key, "{err}");
            assert!(err.to_string().contains(text), "{err}");
        }
        // The good pair loads, and the CA file with a certificate is trusted.
        std::fs::write(dir.path().join("client.key"), key.serialize_pem()).unwrap();
        client_config(&pair(&cert_file, &dir.path().join("client.key"))).unwrap();
        client_config(&ca(&cert_file)).unwrap();
    }
}
