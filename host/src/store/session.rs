//! Session ids and the `drupe_session` cookie.
//!
//! An id is 128 random bits from the OS (`getrandom(2)`), shown as 32
//! lowercase hex digits. It is only a name: the host trusts a cookie only
//! if the store holds a live session under that id (see `call`), so a
//! visitor cannot pick an id for someone else (session fixation) and an
//! expired id is replaced, not revived.

use super::StoreError;

/// The cookie's name.
pub use drupe_sdk::store_op::SESSION_COOKIE as COOKIE;

/// A session id.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionId([u8; 16]);

/// Ids are secrets as good as a password: never print them whole.
impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Result<SessionId, StoreError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Other(format!("no random bytes for a session id: {e}")))?;
        Ok(SessionId(bytes))
    }

    /// The 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses 32 hex digits (either case).
    pub fn parse(text: &[u8]) -> Option<SessionId> {
        if text.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (drupe_sdk::hex_digit(pair[0])? << 4) | drupe_sdk::hex_digit(pair[1])?;
        }
        Some(SessionId(bytes))
    }

    /// The `Set-Cookie` value that hands this id to the browser (see
    /// `drupe_sdk::store_op::session_cookie`).
    pub fn set_cookie(&self) -> String {
        drupe_sdk::store_op::session_cookie(&self.hex())
    }
}

/// The session id in one `Cookie` header value (`a=1; drupe_session=…`),
/// if it holds a well-formed one (RFC 6265 §4.2.1: pairs separated by
/// `"; "`; tolerate missing or extra spaces).
pub fn from_cookie_header(value: &[u8]) -> Option<SessionId> {
    value
        .split(|&b| b == b';')
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == COOKIE.as_bytes()).then(|| &pair[eq + 1..])
        })
        .find_map(|value| SessionId::parse(value.trim_ascii()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_hex_and_round_trip() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        let hex = a.hex();
        assert_eq!(hex.len(), 32);
        assert!(hex
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(SessionId::parse(hex.as_bytes()), Some(a));
        assert_eq!(SessionId::parse(hex.to_uppercase().as_bytes()), Some(a));
        assert!(!format!("{a:?}").contains(&hex[4..]), "Debug hides the id");
    }

    #[test]
    fn set_cookie_has_the_promised_attributes() {
        let id = SessionId::parse(b"000102030405060708090a0b0c0d0e0f").unwrap();
        assert_eq!(
            id.set_cookie(),
            "drupe_session=000102030405060708090a0b0c0d0e0f; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn cookie_header_parsing() {
        let id = "00112233445566778899aabbccddeeff";
        let want = SessionId::parse(id.as_bytes());
        for header in [
            format!("drupe_session={id}"),
            format!("a=1; drupe_session={id}; b=2"),
            format!("a=1;drupe_session = {id} "),
            format!("drupe_session=bad; drupe_session={id}"),
        ] {
            assert_eq!(from_cookie_header(header.as_bytes()), want, "{header}");
        }
        for header in [
            "".to_owned(),
            "drupe_session=".to_owned(),
            format!("drupe_session={id}0"),
            format!("drupe_session={}", &id[1..]),
            format!("xdrupe_session={id}"),
            format!("drupe_session={}zz", &id[2..]),
        ] {
            assert_eq!(from_cookie_header(header.as_bytes()), None, "{header}");
        }
    }
}
