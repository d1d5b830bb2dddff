//! HTTPS, the master's part: read `[tls] certificate` and `key` and build
//! the rustls configuration every worker of a generation serves with.
//!
//! The master does this when it makes a generation (at start, at every
//! reload, for `--check`), so a key readable only by root works with
//! `[server] user`, a bad pair is refused before any worker is replaced,
//! and workers inherit the result through `fork` without reading a file.
//! The session-ticket key is made here too ([`ticket`]): every worker of a
//! generation holds the same one, so a client resumed by one worker is
//! resumed by any. The worker's part, the bytes on each connection, is
//! `worker::transport`.

use crate::config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub mod ticket;

pub use ticket::TicketKeys;

/// The one application protocol spoken on the TLS port (RFC 7301).
const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// What the workers of one generation serve HTTPS with.
#[derive(Debug, Clone)]
pub struct Tls {
    pub server: Arc<ServerConfig>,
    /// The ticket keys inside `server`, kept to derive the next
    /// generation's (see [`TicketKeys::rotated`]).
    pub tickets: TicketKeys,
}

/// Why the certificate and key cannot be served; names the files.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Loads `[tls]` if it is set. `previous` is the ticket keys of the
/// generation being replaced: the new one encrypts with a fresh key and
/// still decrypts the tickets of the last.
pub fn load(tls: &config::Https, previous: Option<&TicketKeys>) -> Result<Option<Tls>, TlsError> {
    let Some((certificate, key)) = tls.files() else {
        return Ok(None);
    };
    let chain = read_chain(certificate)?;
    let private = read_key(key)?;
    // ring has no post-quantum key exchange, hence the deprecation; the
    // provider that has one, aws-lc-rs, needs cmake to build.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tickets = match previous {
        Some(previous) => previous.rotated(),
        None => TicketKeys::new(),
    }
    .map_err(|e| TlsError(format!("cannot make a session ticket key: {e}")))?;
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    "the key does not belong to the certificate".to_owned()
                }
                other => other.to_string(),
            };
            TlsError(format!(
                "[tls] certificate {} and key {}: {why}",
                certificate.display(),
                key.display()
            ))
        })?;
    server.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
    server.ticketer = Arc::new(tickets.ticketer());
    // Tickets carry the sessions: no per-process cache, which a client
    // would hit only if it came back to the same worker.
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Some(Tls {
        server: Arc::new(server),
        tickets,
    }))
}

/// The certificates of a PEM file, server certificate first.
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("[tls] certificate {}: {e}", path.display())))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "[tls] certificate {}: no \"BEGIN CERTIFICATE\" section; give the PEM certificate chain",
            path.display()
        )));
    }
    Ok(chain)
}

/// The first private key of a PEM file, in any of the three encodings.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key (PKCS#8, PKCS#1 or SEC1 PEM section)".to_owned()
            }
            other => other.to_string(),
        };
        TlsError(format!("[tls] key {}: {why}", path.display()))
    })
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|e| TlsError(format!("[tls] {key} {}: cannot read: {e}", path.display())))
}
