//! [`Value`]: what the store holds, as bytes, with helpers for text and
//! integers.

/// A stored value: bytes, with helpers for text and integers.
///
/// Anything that converts into a `Value` can be stored: `&str`, `String`,
/// `&[u8]`, `Vec<u8>`, and integers (stored as decimal text, as
/// [`Store::incr`](crate::Store::incr) keeps them, so `get_i64` reads either).
///
/// ```
/// use drupe_sdk::Value;
///
/// assert_eq!(Value::from(42).as_str(), Some("42"));
/// assert_eq!(Value::from("-7").to_i64(), Some(-7));
/// assert_eq!(Value::from(&b"\xff"[..]).as_str(), None);
/// assert_eq!(Value::from("x").as_bytes(), b"x");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Value(Vec<u8>);

impl Value {
    /// The bytes.
    ///
    /// ```
    /// use drupe_sdk::Value;
    /// assert_eq!(Value::from("ab").as_bytes(), b"ab");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, without copying.
    ///
    /// ```
    /// use drupe_sdk::Value;
    /// assert_eq!(Value::from("ab").into_bytes(), b"ab".to_vec());
    /// ```
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The value as text, if it is UTF-8.
    ///
    /// ```
    /// use drupe_sdk::Value;
    /// assert_eq!(Value::from("tea").as_str(), Some("tea"));
    /// assert_eq!(Value::from(vec![0xff]).as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The value as a decimal `i64` (`-12`), if it is one.
    ///
    /// ```
    /// use drupe_sdk::Value;
    /// assert_eq!(Value::from("-12").to_i64(), Some(-12));
    /// assert_eq!(Value::from("12x").to_i64(), None);
    /// ```
    pub fn to_i64(&self) -> Option<i64> {
        self.as_str()?.parse().ok()
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Value {
        Value(bytes)
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Value {
        Value(bytes.to_vec())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value(text.into_bytes())
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value(text.as_bytes().to_vec())
    }
}

impl From<&String> for Value {
    fn from(text: &String) -> Value {
        Value::from(text.as_str())
    }
}

macro_rules! value_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            /// Stored as decimal text.
            fn from(n: $t) -> Value {
                Value(n.to_string().into_bytes())
            }
        }
    )*};
}
value_from_int!(i32, i64, u32, u64, usize);
