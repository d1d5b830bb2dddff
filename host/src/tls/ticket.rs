//! Session tickets every worker can open.
//!
//! A TLS session ticket is the server's own state, sealed with a key only
//! the server knows and handed to the client, which shows it again to
//! resume without a full handshake (RFC 8446 §4.6.1; RFC 5077 for TLS
//! 1.2). rustls's own ticketer draws its key inside each process, so a
//! ticket from one worker would mean nothing to its siblings. Here the
//! master draws the key (from `getrandom`) when it makes a generation,
//! before it forks, so every worker of the generation seals and opens with
//! the same one. A reload draws a new key and keeps the last one for
//! opening only: tickets issued just before a HUP still resume after it.
//!
//! A ticket is `key name (16) | nonce (12) | sealed state | tag (16)`,
//! ChaCha20-Poly1305 with the key name as associated data, as in rustls's
//! ticketer. The nonce is random: a counter would let an observer link
//! the tickets of one server.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use std::fmt;

/// How long a client may keep a ticket (a hint to it, RFC 8446 §4.6.1):
/// keys change only at a reload, so this bounds nothing on the server.
const LIFETIME_SECS: u32 = 12 * 60 * 60;
const NAME_LEN: usize = 16;
/// Sealed session state is a few hundred bytes; refusing anything much
/// longer unopened keeps attacker-chosen input away from the AEAD (as
/// rustls's ticketer does with the longest ticket it made).
const MAX_TICKET: usize = 2048;

/// One key: its public name (first in every ticket) and its secret.
#[derive(Clone)]
struct Key {
    name: [u8; NAME_LEN],
    secret: [u8; 32],
}

impl Key {
    fn random() -> Result<Key, getrandom::Error> {
        let mut key = Key {
            name: [0; NAME_LEN],
            secret: [0; 32],
        };
        getrandom::fill(&mut key.name)?;
        getrandom::fill(&mut key.secret)?;
        Ok(key)
    }
}

/// The keys of one generation: `current` seals and opens, `previous`
/// (the last generation's) only opens.
#[derive(Clone)]
pub struct TicketKeys {
    current: Key,
    previous: Option<Key>,
}

impl fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketKeys { .. }") // never the secrets
    }
}

impl TicketKeys {
    /// A fresh key, with no previous one (the first generation).
    pub fn new() -> Result<TicketKeys, getrandom::Error> {
        Ok(TicketKeys {
            current: Key::random()?,
            previous: None,
        })
    }

    /// The next generation's keys: a fresh one, and this one to open the
    /// tickets it issued.
    pub fn rotated(&self) -> Result<TicketKeys, getrandom::Error> {
        Ok(TicketKeys {
            current: Key::random()?,
            previous: Some(self.current.clone()),
        })
    }

    /// The rustls side of these keys.
    pub fn ticketer(&self) -> Ticketer {
        let keys = std::iter::once(&self.current)
            .chain(&self.previous)
            .filter_map(|key| {
                let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key.secret).ok()?;
                Some((key.name, LessSafeKey::new(unbound)))
            })
            .collect();
        Ticketer { keys }
    }
}

/// Seals with the first key, opens with any.
pub struct Ticketer {
    keys: Vec<([u8; NAME_LEN], LessSafeKey)>,
}

impl fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticketer {{ {} key(s) }}", self.keys.len())
    }
}

impl rustls::server::ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME_SECS
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let (name, key) = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let tag_len = key.algorithm().tag_len();
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + tag_len);
        ticket.extend_from_slice(name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name),
                &mut ticket[NAME_LEN + NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() > MAX_TICKET || ticket.len() < NAME_LEN + NONCE_LEN {
            return None;
        }
        let (name, rest) = ticket.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        // The name is public (it is in every ticket): no need to compare
        // it in constant time. It is authenticated as associated data.
        let (_, key) = self.keys.iter().find(|(n, _)| n[..] == *name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let plain_len = key
            .open_in_place(nonce, Aad::from(name), &mut buf)
            .ok()?
            .len();
        buf.truncate(plain_len);
        Some(buf)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    #[test]
    fn a_rotated_generation_opens_the_last_ones_tickets_but_not_older() {
        let first = TicketKeys::new().unwrap();
        let second = first.rotated().unwrap();
        let third = second.rotated().unwrap();
        let ticket = first.ticketer().encrypt(b"session state").unwrap();
        assert_eq!(first.ticketer().decrypt(&ticket).unwrap(), b"session state");
        assert_eq!(
            second.ticketer().decrypt(&ticket).unwrap(),
            b"session state",
            "the previous key still opens"
        );
        assert_eq!(third.ticketer().decrypt(&ticket), None, "two reloads ago");
        let newer = second.ticketer().encrypt(b"x").unwrap();
        assert_eq!(
            first.ticketer().decrypt(&newer),
            None,
            "old workers cannot open the new key's tickets"
        );
    }

    #[test]
    fn a_forked_copy_of_the_keys_opens_the_same_tickets() {
        // Workers get the master's keys through fork: a clone stands in.
        let keys = TicketKeys::new().unwrap();
        let copy = keys.clone();
        let ticket = keys.ticketer().encrypt(b"state").unwrap();
        assert_eq!(copy.ticketer().decrypt(&ticket).unwrap(), b"state");
    }

    #[test]
    fn tampered_short_and_long_tickets_are_refused() {
        let ticketer = TicketKeys::new().unwrap().ticketer();
        let mut ticket = ticketer.encrypt(b"state").unwrap();
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert_eq!(ticketer.decrypt(&ticket), None);
        assert_eq!(ticketer.decrypt(&ticket[..20]), None);
        assert_eq!(ticketer.decrypt(&vec![0; MAX_TICKET + 1]), None);
        assert_eq!(ticketer.decrypt(&[]), None);
    }
}
