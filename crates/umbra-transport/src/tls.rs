//! Ed25519-pinned TLS 1.3 between Umbra nodes and clients
//! (`shared/spec/storage-rpc.md` §1.3, `shared/spec/swarms.md` §8).
//!
//! A node serves TLS 1.3 with a self-signed X.509 certificate whose subject
//! public key is the node's Ed25519 identity key (RFC 8410). Whoever calls a
//! node already knows that key (from the registry or the seed list), so the
//! caller pins it: [`PinnedNodeVerifier`] accepts exactly the certificate whose
//! `SubjectPublicKeyInfo` is the expected Ed25519 key, does no CA, name or date
//! validation, and then checks the TLS 1.3 `CertificateVerify` signature
//! against the *pinned* key. A network attacker without the node's secret key
//! therefore cannot complete a handshake.
//!
//! Everything uses rustls with the `ring` provider, TLS 1.3 only. Session
//! resumption is off on both sides: a resumed session presents no certificate,
//! and the client keeps connections alive instead (see [`crate::client`]).
//!
//! **Calling nodes authenticate too.** A node's server offers optional client
//! authentication ([`NodeClientVerifier`]): a node calling another node
//! presents its own self-signed certificate ([`ClientIdentity`]) and proves,
//! once per connection in the handshake, that it holds the key; the server
//! hands the verified key to its handlers ([`crate::server::PeerNode`]).
//! Clients present nothing (a client certificate would identify the user),
//! and the handshake is the same for them as without the offer.

use std::sync::{Arc, OnceLock};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ParsedCertificate};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};
use umbra_crypto::pkcs8::ed25519_pkcs8_der;
use umbra_crypto::{Ed25519Keypair, Ed25519Public};

/// DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410 §4): a SEQUENCE
/// of the id-Ed25519 algorithm identifier and a 33-byte BIT STRING whose
/// first byte (unused bits) is 0, followed by the 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Length of an Ed25519 `SubjectPublicKeyInfo` in DER.
pub const ED25519_SPKI_LEN: usize = ED25519_SPKI_PREFIX.len() + 32;

/// ALPN identifiers the server offers, most preferred first.
const SERVER_ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// ALPN identifier the node client asks for.
pub(crate) const CLIENT_ALPN: &[u8] = H1_ALPN;

/// The ALPN identifier of HTTP/1.1.
pub(crate) const H1_ALPN: &[u8] = b"http/1.1";

/// The ALPN identifier of HTTP/2.
pub(crate) const H2_ALPN: &[u8] = b"h2";

/// A failure to build a TLS configuration or certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The self-signed certificate could not be generated.
    #[error("generating the node's self-signed certificate failed")]
    Certificate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// rustls refused the configuration (protocol versions, key or certificate).
    #[error("building the rustls configuration failed")]
    Config(#[source] rustls::Error),
    /// A certificate could not be parsed, or its key is not Ed25519.
    #[error("the certificate does not carry an Ed25519 key")]
    NotEd25519,
}

/// The certificate key differs from the pinned key. Carried inside
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))` so the
/// client can tell a pin mismatch from other handshake failures.
#[derive(Debug, thiserror::Error)]
#[error("the certificate key is not the pinned Ed25519 key")]
pub(crate) struct PinMismatch;

/// The rustls crypto provider used everywhere in Umbra (ring).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The DER `SubjectPublicKeyInfo` of an Ed25519 public key (44 bytes).
pub fn ed25519_spki_der(key: &Ed25519Public) -> [u8; ED25519_SPKI_LEN] {
    let mut out = [0u8; ED25519_SPKI_LEN];
    out[..ED25519_SPKI_PREFIX.len()].copy_from_slice(&ED25519_SPKI_PREFIX);
    out[ED25519_SPKI_PREFIX.len()..].copy_from_slice(key.as_bytes());
    out
}

/// The Ed25519 key of a certificate, if it parses and carries one.
pub fn certificate_ed25519_key(cert: &CertificateDer<'_>) -> Result<Ed25519Public, TlsError> {
    let parsed = ParsedCertificate::try_from(cert).map_err(|_| TlsError::NotEd25519)?;
    let spki = parsed.subject_public_key_info();
    let key = spki
        .as_ref()
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .ok_or(TlsError::NotEd25519)?;
    Ed25519Public::from_slice(key).map_err(|_| TlsError::NotEd25519)
}

/// Generates the node's self-signed certificate: subject key and signature
/// are both the node's Ed25519 identity key. The result is deterministic for
/// a given key (the serial number is derived from the key, Ed25519 signatures
/// are deterministic, validity is fixed to 1975–4096).
pub fn node_certificate(identity: &Ed25519Keypair) -> Result<CertificateDer<'static>, TlsError> {
    let pkcs8 = ed25519_pkcs8_der(identity);
    node_certificate_from_pkcs8(&PrivatePkcs8KeyDer::from(pkcs8.as_slice()))
}

fn node_certificate_from_pkcs8(
    pkcs8: &PrivatePkcs8KeyDer<'_>,
) -> Result<CertificateDer<'static>, TlsError> {
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(pkcs8, &rcgen::PKCS_ED25519)
        .map_err(|e| TlsError::Certificate(Box::new(e)))?;
    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, "umbra node");
    params.distinguished_name = name;
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Certificate(Box::new(e)))?;
    Ok(cert.der().clone())
}

/// The rustls server configuration of a node: TLS 1.3 only, the node's
/// self-signed Ed25519 certificate, ALPN `h2` and `http/1.1`, no session
/// tickets or resumption, optional Ed25519 client certificates
/// ([`NodeClientVerifier`]).
pub fn server_config(identity: &Ed25519Keypair) -> Result<Arc<ServerConfig>, TlsError> {
    let pkcs8 = ed25519_pkcs8_der(identity);
    let cert = node_certificate_from_pkcs8(&PrivatePkcs8KeyDer::from(pkcs8.as_slice()))?;
    // rustls takes ownership of the key bytes; `PrivatePkcs8KeyDer` zeroizes
    // an owned buffer on drop, and `pkcs8` zeroizes ours.
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(Arc::new(NodeClientVerifier::new(&provider())))
        .with_single_cert(vec![cert], key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = SERVER_ALPN.iter().map(|p| p.to_vec()).collect();
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// A client configuration that connects only to the node holding the secret
/// key of `expected`: TLS 1.3 only, [`PinnedNodeVerifier`], ALPN `http/1.1`,
/// no SNI, no resumption, no client certificate.
pub fn client_config(expected: Ed25519Public) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_with(expected, None)
}

/// [`client_config`], presenting `identity` when the server asks for a
/// client certificate (node-to-node connections). Clients pass `None`.
pub fn client_config_with(
    expected: Ed25519Public,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    client_config_alpn(expected, identity, CLIENT_ALPN)
}

/// [`client_config_with`] offering the ALPN protocol `alpn` (`http/1.1` or
/// `h2`).
pub(crate) fn client_config_alpn(
    expected: Ed25519Public,
    identity: Option<&ClientIdentity>,
    alpn: &[u8],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PinnedNodeVerifier::new(expected, &provider));
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => builder.with_client_cert_resolver(Arc::new(IdentityResolver(id.0.clone()))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_sni = false;
    Ok(Arc::new(config))
}

/// A node's TLS client identity: its self-signed Ed25519 certificate
/// ([`node_certificate`]) and key, presented to the nodes it calls so that
/// they know which node is at the other end of the connection. Cheap to
/// clone; never used by clients.
#[derive(Clone)]
pub struct ClientIdentity(Arc<CertifiedKey>);

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The identity of the node holding `identity`.
    pub fn new(identity: &Ed25519Keypair) -> Result<Self, TlsError> {
        let pkcs8 = ed25519_pkcs8_der(identity);
        let cert = node_certificate_from_pkcs8(&PrivatePkcs8KeyDer::from(pkcs8.as_slice()))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec()));
        let certified =
            CertifiedKey::from_der(vec![cert], key, &provider()).map_err(TlsError::Config)?;
        Ok(ClientIdentity(Arc::new(certified)))
    }
}

/// Presents one [`ClientIdentity`] whenever the server accepts Ed25519.
#[derive(Debug)]
struct IdentityResolver(Arc<CertifiedKey>);

impl ResolvesClientCert for IdentityResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        sigschemes
            .contains(&SignatureScheme::ED25519)
            .then(|| self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A node server's client-certificate verifier: client authentication is
/// offered but optional. A presented certificate must carry an Ed25519 key
/// (nothing else about it is checked: the server decides what that key may
/// do), and the TLS 1.3 `CertificateVerify` signature must verify under that
/// key, which proves the caller holds it.
#[derive(Debug)]
pub struct NodeClientVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl NodeClientVerifier {
    /// A verifier using `provider`'s signature algorithms.
    pub fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for NodeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        certificate_ed25519_key(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS 1.2 is not used by Umbra".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let key = certificate_ed25519_key(cert)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(ed25519_spki_der(&key).as_slice()),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// A rustls server-certificate verifier that pins one Ed25519 key.
///
/// It accepts exactly an end-entity certificate whose `SubjectPublicKeyInfo`
/// equals the Ed25519 SPKI of the expected key, byte for byte; intermediates,
/// server name, validity dates and OCSP data are ignored. The TLS 1.3
/// handshake signature is then verified against the pinned key with the
/// provider's algorithms, and only `ed25519` is advertised. TLS 1.2 is refused.
#[derive(Debug)]
pub struct PinnedNodeVerifier {
    expected: Ed25519Public,
    spki: [u8; ED25519_SPKI_LEN],
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedNodeVerifier {
    /// A verifier for `expected`, using `provider`'s signature algorithms.
    pub fn new(expected: Ed25519Public, provider: &CryptoProvider) -> Self {
        Self {
            expected,
            spki: ed25519_spki_der(&expected),
            algorithms: provider.signature_verification_algorithms,
        }
    }

    /// The pinned key.
    pub fn expected(&self) -> Ed25519Public {
        self.expected
    }
}

impl ServerCertVerifier for PinnedNodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        if parsed.subject_public_key_info().as_ref() != self.spki.as_slice() {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch)),
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "TLS 1.2 is not used by Umbra".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        _cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Verify against the pinned key itself, not whatever the certificate
        // says: `verify_server_cert` already required them to be equal.
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(self.spki.as_slice()),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Whether a rustls error (possibly inside an I/O error) is a pin mismatch
/// raised by [`PinnedNodeVerifier`].
pub(crate) fn is_pin_mismatch(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) =
            e.downcast_ref::<rustls::Error>()
            && other.0.downcast_ref::<PinMismatch>().is_some()
        {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            cur = io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static));
            continue;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keypair(b: u8) -> Ed25519Keypair {
        Ed25519Keypair::from_seed(&[b; 32])
    }

    #[test]
    fn certificate_carries_the_identity_key() {
        let kp = keypair(1);
        let cert = node_certificate(&kp).unwrap();
        assert_eq!(certificate_ed25519_key(&cert).unwrap(), kp.public());
        let spki = ParsedCertificate::try_from(&cert)
            .unwrap()
            .subject_public_key_info();
        assert_eq!(spki.as_ref(), ed25519_spki_der(&kp.public()).as_slice());
    }

    #[test]
    fn certificate_is_deterministic() {
        let kp = keypair(2);
        assert_eq!(
            node_certificate(&kp).unwrap(),
            node_certificate(&kp).unwrap()
        );
        assert_ne!(
            node_certificate(&kp).unwrap(),
            node_certificate(&keypair(3)).unwrap()
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(matches!(
            certificate_ed25519_key(&der),
            Err(TlsError::NotEd25519)
        ));
    }

    #[test]
    fn verifier_accepts_only_the_pinned_certificate() {
        let kp = keypair(4);
        let cert = node_certificate(&kp).unwrap();
        let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        let good = PinnedNodeVerifier::new(kp.public(), &provider());
        good.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .unwrap();
        let bad = PinnedNodeVerifier::new(keypair(5).public(), &provider());
        let err = bad
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .unwrap_err();
        assert!(is_pin_mismatch(&err), "{err:?}");
        // Wrapped in an io::Error, as tokio-rustls reports it.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, err);
        assert!(is_pin_mismatch(&io));
        // A different certificate error is not a pin mismatch.
        let other = bad
            .verify_server_cert(
                &CertificateDer::from(vec![1, 2, 3]),
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
            .unwrap_err();
        assert!(!is_pin_mismatch(&other));
    }

    /// A `DigitallySignedStruct` as it appears on the wire (rustls has no
    /// public constructor): scheme, 16-bit length, signature.
    fn dss(scheme: SignatureScheme, sig: &[u8]) -> DigitallySignedStruct {
        use rustls::internal::msgs::codec::Codec;
        let mut wire = u16::from(scheme).to_be_bytes().to_vec();
        wire.extend_from_slice(&u16::try_from(sig.len()).unwrap().to_be_bytes());
        wire.extend_from_slice(sig);
        DigitallySignedStruct::read_bytes(&wire).unwrap()
    }

    #[test]
    fn handshake_signature_is_checked_against_the_pinned_key() {
        let kp = keypair(6);
        let cert = node_certificate(&kp).unwrap();
        let verifier = PinnedNodeVerifier::new(kp.public(), &provider());
        let msg = b"transcript";
        let sig = kp.sign(msg);
        let dss = dss(SignatureScheme::ED25519, &sig);
        verifier.verify_tls13_signature(msg, &cert, &dss).unwrap();
        // Tampered message.
        assert!(
            verifier
                .verify_tls13_signature(b"transcripT", &cert, &dss)
                .is_err()
        );
        // A signature by another key, even over the same message.
        let other = self::dss(SignatureScheme::ED25519, &keypair(7).sign(msg));
        assert!(verifier.verify_tls13_signature(msg, &cert, &other).is_err());
        // The right signature under a scheme that does not fit the key.
        let ecdsa = self::dss(SignatureScheme::ECDSA_NISTP256_SHA256, &sig);
        assert!(verifier.verify_tls13_signature(msg, &cert, &ecdsa).is_err());
        // TLS 1.2 is never accepted.
        assert!(verifier.verify_tls12_signature(msg, &cert, &dss).is_err());
        assert_eq!(
            verifier.supported_verify_schemes(),
            vec![SignatureScheme::ED25519]
        );
    }

    #[test]
    fn configs_build() {
        let kp = keypair(8);
        let server = server_config(&kp).unwrap();
        assert_eq!(server.send_tls13_tickets, 0);
        let client = client_config(kp.public()).unwrap();
        assert_eq!(client.alpn_protocols, vec![CLIENT_ALPN.to_vec()]);
    }
}
