//! Server-side TLS for the [`TestServer`](crate::TestServer), and a client-side helper.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::pki::{Ca, Identity};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS configuration for [`TestServerBuilder::tls`](crate::TestServerBuilder::tls).
///
/// Usually made by [`Pki::server_tls`](crate::Pki::server_tls) and friends.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    client_auth: ClientAuth,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientAuth {
    None,
    Optional,
    Required,
    Custom,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Serves `identity` (its certificate alone as the chain); asks for no client certificate.
    ///
    /// # Panics
    /// If rustls rejects the key.
    pub fn new(identity: &Identity) -> ServerTls {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![identity.cert_der().clone()], key_der(identity))
            .expect("server certificate and key");
        ServerTls {
            config: Arc::new(config),
            client_auth: ClientAuth::None,
        }
    }

    /// Serves `identity` and requires a client certificate signed by `client_ca` (mutual TLS):
    /// a client without one, or with one from another CA, fails the handshake.
    pub fn mutual(identity: &Identity, client_ca: &Ca) -> ServerTls {
        ServerTls::with_client_ca(identity, client_ca, true)
    }

    /// Serves `identity` and accepts, but does not require, a client certificate signed by
    /// `client_ca`. Whether one was presented shows in
    /// [`RecordedRequest::client_cert_presented`](crate::RecordedRequest::client_cert_presented).
    pub fn optional_client_cert(identity: &Identity, client_ca: &Ca) -> ServerTls {
        ServerTls::with_client_ca(identity, client_ca, false)
    }

    fn with_client_ca(identity: &Identity, client_ca: &Ca, required: bool) -> ServerTls {
        let mut roots = RootCertStore::empty();
        roots
            .add(client_ca.cert_der().clone())
            .expect("client CA certificate");
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
        let builder = if required {
            builder
        } else {
            builder.allow_unauthenticated()
        };
        let verifier = builder.build().expect("client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![identity.cert_der().clone()], key_der(identity))
            .expect("server certificate and key");
        let client_auth = if required {
            ClientAuth::Required
        } else {
            ClientAuth::Optional
        };
        ServerTls {
            config: Arc::new(config),
            client_auth,
        }
    }

    /// Any rustls server configuration of your own.
    pub fn from_config(config: Arc<rustls::ServerConfig>) -> ServerTls {
        ServerTls {
            config,
            client_auth: ClientAuth::Custom,
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.config
    }
}

fn key_der(identity: &Identity) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der().to_vec()))
}

/// A rustls client configuration trusting `roots` and presenting `identity` if given: for
/// tests that dial a [`TestServer`](crate::TestServer) with `tokio-rustls` directly.
///
/// # Panics
/// If rustls rejects a certificate or the key.
pub fn client_config(roots: &[&Ca], identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    let mut store = RootCertStore::empty();
    for ca in roots {
        store.add(ca.cert_der().clone()).expect("root certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(store);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.cert_der().clone()], key_der(id))
            .expect("client certificate and key"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// The subject common name of a DER certificate, if it has one (UTF8String, PrintableString or
/// IA5String). A minimal DER walk: Certificate -> TBSCertificate -> subject.
pub(crate) fn subject_common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (tag, cert_body, _) = der_item(cert.as_ref())?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = der_item(cert_body)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject.
    let (tag, _, after) = der_item(rest)?;
    if tag == 0xa0 {
        rest = after;
    }
    for _ in 0..4 {
        rest = der_item(rest)?.2;
    }
    let (tag, subject, _) = der_item(rest)?;
    if tag != 0x30 {
        return None;
    }
    // subject: SEQUENCE OF SET OF SEQUENCE { OID, value }
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, next) = der_item(rdns)?;
        rdns = next;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (_, atv, next) = der_item(atvs)?;
            atvs = next;
            let (tag, oid, value) = der_item(atv)?;
            if tag == 0x06 && oid == [0x55, 0x04, 0x03] {
                let (tag, text, _) = der_item(value)?;
                if matches!(tag, 0x0c | 0x13 | 0x16) {
                    return Some(String::from_utf8_lossy(text).into_owned());
                }
            }
        }
    }
    None
}

/// One DER item: (tag, contents, rest).
fn der_item(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    if end > input.len() {
        return None;
    }
    Some((tag, &input[header..end], &input[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pki;

    #[test]
    fn common_name_is_the_subject_not_the_issuer() {
        let pki = Pki::new();
        assert_eq!(
            subject_common_name(pki.client().cert_der()).as_deref(),
            Some("hook-client")
        );
        assert_eq!(
            subject_common_name(pki.server().cert_der()).as_deref(),
            Some("localhost")
        );
        assert_eq!(
            subject_common_name(pki.ca().cert_der()).as_deref(),
            Some("hook-test CA")
        );
    }

    #[test]
    fn garbage_has_no_common_name() {
        for bytes in [
            &b""[..],
            &[0x30][..],
            &[0x30, 0x81][..],
            &[0x30, 0x05, 0x30, 0x00][..],
        ] {
            assert_eq!(
                subject_common_name(&CertificateDer::from(bytes.to_vec())),
                None
            );
        }
    }
}
