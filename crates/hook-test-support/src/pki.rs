//! A throw-away PKI on rcgen, written as PEM files to a temporary directory.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;
use tempfile::TempDir;

use crate::tls::ServerTls;

/// A certificate authority: its certificate as PEM/DER and a file, and the key to issue more.
pub struct Ca {
    name: String,
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    cert_path: PathBuf,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("name", &self.name)
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl Ca {
    /// The CA's common name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The PEM file holding the CA certificate (what a client's `ca_certificates` lists).
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }
}

/// A leaf (or self-signed) certificate with its key, as PEM/DER and as files.
#[derive(Clone)]
pub struct Identity {
    common_name: String,
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
    cert_path: PathBuf,
    key_path: PathBuf,
    ca_path: PathBuf,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of Debug.
        f.debug_struct("Identity")
            .field("common_name", &self.common_name)
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The subject common name.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Certificate then key in one PEM string (what `reqwest::Identity::from_pem` takes).
    pub fn combined_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The private key, PKCS#8 DER.
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The certificate's PEM file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The key's PEM file.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The PEM file of the CA that validates this certificate: the issuer's certificate, or
    /// the certificate itself when self-signed.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }
}

/// A ready-made PKI in a temporary directory (deleted on drop).
///
/// * [`ca`](Pki::ca) issues [`server`](Pki::server): CN `localhost`, SANs `127.0.0.1`, `::1`,
///   `localhost`.
/// * [`self_signed`](Pki::self_signed): a self-signed server certificate with
///   `basicConstraints CA:TRUE` and the same SANs, as `openssl req -x509` makes.
/// * [`client_ca`](Pki::client_ca) issues [`client`](Pki::client) (CN `hook-client`).
/// * [`other_ca`](Pki::other_ca) issues [`untrusted_client`](Pki::untrusted_client)
///   (CN `rogue-client`), a client certificate no server here trusts.
///
/// More can be issued with [`new_ca`](Pki::new_ca), [`issue_server`](Pki::issue_server) and
/// [`issue_client`](Pki::issue_client).
///
/// ```
/// use hook_test_support::Pki;
///
/// let pki = Pki::new();
/// assert!(pki.server().cert_path().exists());
/// assert_eq!(pki.server().ca_path(), pki.ca().cert_path());
/// assert_eq!(pki.self_signed().ca_path(), pki.self_signed().cert_path());
/// assert_eq!(pki.client().common_name(), "hook-client");
/// ```
pub struct Pki {
    dir: TempDir,
    ca: Ca,
    server: Identity,
    self_signed: Identity,
    client_ca: Ca,
    client: Identity,
    other_ca: Ca,
    untrusted_client: Identity,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}

/// The host names a server certificate is valid for.
pub const SERVER_NAMES: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

impl Pki {
    /// Generates the whole PKI (ECDSA P-256 keys; a few milliseconds).
    ///
    /// # Panics
    /// If the temporary directory cannot be written.
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("hook-pki-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().to_path_buf();
        let ca = new_ca_in(&path, "hook-test CA", "ca");
        let server = issue_in(
            &path,
            &ca,
            "localhost",
            &SERVER_NAMES,
            Leaf::Server,
            "server",
        );
        let self_signed = self_signed_in(&path, "localhost", &SERVER_NAMES, "self-signed");
        let client_ca = new_ca_in(&path, "hook-test client CA", "client-ca");
        let client = issue_in(
            &path,
            &client_ca,
            "hook-client",
            &[],
            Leaf::Client,
            "client",
        );
        let other_ca = new_ca_in(&path, "hook-test other CA", "other-ca");
        let untrusted_client = issue_in(
            &path,
            &other_ca,
            "rogue-client",
            &[],
            Leaf::Client,
            "rogue-client",
        );
        Pki {
            dir,
            ca,
            server,
            self_signed,
            client_ca,
            client,
            other_ca,
            untrusted_client,
        }
    }

    /// The directory holding every PEM file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server CA (`ca.pem`).
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The server certificate issued by [`ca`](Pki::ca) (`server.pem`, `server.key`).
    pub fn server(&self) -> &Identity {
        &self.server
    }

    /// The self-signed `CA:TRUE` server certificate (`self-signed.pem`, `self-signed.key`).
    pub fn self_signed(&self) -> &Identity {
        &self.self_signed
    }

    /// The client CA (`client-ca.pem`).
    pub fn client_ca(&self) -> &Ca {
        &self.client_ca
    }

    /// The client certificate issued by [`client_ca`](Pki::client_ca) (`client.pem`,
    /// `client.key`).
    pub fn client(&self) -> &Identity {
        &self.client
    }

    /// A CA nobody here trusts (`other-ca.pem`).
    pub fn other_ca(&self) -> &Ca {
        &self.other_ca
    }

    /// A client certificate issued by [`other_ca`](Pki::other_ca) (`rogue-client.pem`).
    pub fn untrusted_client(&self) -> &Identity {
        &self.untrusted_client
    }

    /// A new CA written as `<file_stem>.pem`.
    pub fn new_ca(&self, common_name: &str, file_stem: &str) -> Ca {
        new_ca_in(self.dir.path(), common_name, file_stem)
    }

    /// A new server certificate from `ca` for `names` (IP addresses or DNS names), written as
    /// `<file_stem>.pem` and `<file_stem>.key`.
    pub fn issue_server(&self, ca: &Ca, names: &[&str], file_stem: &str) -> Identity {
        let cn = names.first().copied().unwrap_or("server");
        issue_in(self.dir.path(), ca, cn, names, Leaf::Server, file_stem)
    }

    /// A new client certificate from `ca` with subject CN `common_name`, written as
    /// `<file_stem>.pem` and `<file_stem>.key`.
    pub fn issue_client(&self, ca: &Ca, common_name: &str, file_stem: &str) -> Identity {
        issue_in(
            self.dir.path(),
            ca,
            common_name,
            &[],
            Leaf::Client,
            file_stem,
        )
    }

    /// TLS for a [`TestServer`](crate::TestServer) serving [`server`](Pki::server), no
    /// client certificates.
    pub fn server_tls(&self) -> ServerTls {
        ServerTls::new(&self.server)
    }

    /// TLS serving the [`self_signed`](Pki::self_signed) certificate.
    pub fn self_signed_server_tls(&self) -> ServerTls {
        ServerTls::new(&self.self_signed)
    }

    /// TLS serving [`server`](Pki::server) and requiring a client certificate from
    /// [`client_ca`](Pki::client_ca).
    pub fn mtls_server_tls(&self) -> ServerTls {
        ServerTls::mutual(&self.server, &self.client_ca)
    }
}

#[derive(Clone, Copy)]
enum Leaf {
    Server,
    Client,
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn san(name: &str) -> SanType {
    match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.try_into().expect("valid DNS name")),
    }
}

fn new_ca_in(dir: &Path, common_name: &str, file_stem: &str) -> Ca {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("generate key");
    let cert = params.self_signed(&key).expect("self-sign CA");
    let cert_pem = cert.pem();
    let cert_path = write(dir, &format!("{file_stem}.pem"), &cert_pem);
    Ca {
        name: common_name.to_owned(),
        issuer: Issuer::new(params, key),
        cert_pem,
        cert_der: cert.der().clone(),
        cert_path,
    }
}

fn leaf_params(common_name: &str, names: &[&str]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names = names.iter().map(|n| san(n)).collect();
    params
}

fn issue_in(
    dir: &Path,
    ca: &Ca,
    common_name: &str,
    names: &[&str],
    leaf: Leaf,
    file_stem: &str,
) -> Identity {
    let mut params = leaf_params(common_name, names);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match leaf {
        Leaf::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Leaf::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    let key = KeyPair::generate().expect("generate key");
    let cert = params.signed_by(&key, &ca.issuer).expect("sign leaf");
    identity(
        dir,
        common_name,
        &cert,
        &key,
        file_stem,
        Some(ca.cert_path.clone()),
    )
}

fn self_signed_in(dir: &Path, common_name: &str, names: &[&str], file_stem: &str) -> Identity {
    let mut params = leaf_params(common_name, names);
    // What `openssl req -x509` makes with the default v3_ca section: CA:TRUE, no key usage.
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("generate key");
    let cert = params.self_signed(&key).expect("self-sign");
    identity(dir, common_name, &cert, &key, file_stem, None)
}

fn identity(
    dir: &Path,
    common_name: &str,
    cert: &rcgen::Certificate,
    key: &KeyPair,
    file_stem: &str,
    ca_path: Option<PathBuf>,
) -> Identity {
    let cert_pem = cert.pem();
    let key_pem = key.serialize_pem();
    let cert_path = write(dir, &format!("{file_stem}.pem"), &cert_pem);
    let key_path = write(dir, &format!("{file_stem}.key"), &key_pem);
    Identity {
        common_name: common_name.to_owned(),
        cert_pem,
        key_pem,
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
        ca_path: ca_path.unwrap_or_else(|| cert_path.clone()),
        cert_path,
        key_path,
    }
}
