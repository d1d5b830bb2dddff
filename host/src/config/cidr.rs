//! `[server] trustedProxies`: the address blocks whose forwarding headers
//! (`X-Forwarded-For`, `X-Forwarded-Proto`, `Forwarded`) are believed.
//!
//! A block is written as in RFC 4632 §3.1 (`10.0.0.0/8`) or RFC 4291 §2.3
//! (`fd00::/8`); a bare address is a block of one (`127.0.0.1`, `::1`).
//! Blocks are separated by commas and/or spaces. An IPv4 peer seen on a
//! dual-stack socket as `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2) matches the
//! IPv4 blocks, so `127.0.0.1` works whatever `socketHost` is.

use std::net::IpAddr;

/// One address block: the address with its host bits cleared, and how
/// many leading bits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`, `x::y/n` or a bare address. Host bits set below
    /// the prefix (`10.1.2.3/8`) are an error: the writer most likely meant
    /// another prefix, and silently widening the block would trust more
    /// peers than they meant to.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, bits)) => (addr, Some(bits)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{text}' is not an IP address or block (10.0.0.0/8, ::1)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(bits) => bits
                .parse::<u8>()
                .ok()
                .filter(|b| bits.bytes().all(|c| c.is_ascii_digit()) && *b <= max)
                .ok_or_else(|| format!("'{text}' has a prefix length that is not 0 to {max}"))?,
        };
        let block = Cidr { addr, prefix };
        if block.network(addr) != bits(addr) {
            return Err(format!(
                "'{text}' has bits set past its /{prefix}; write the block's first address"
            ));
        }
        Ok(block)
    }

    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && self.network(ip) == bits(self.addr)
    }

    /// `ip` as a number with the bits past the prefix cleared.
    fn network(&self, ip: IpAddr) -> u128 {
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let keep = u32::from(self.prefix);
        if keep == 0 {
            return 0;
        }
        bits(ip) & (u128::MAX << (width - keep)) & (u128::MAX >> (128 - width))
    }
}

/// The address as a number (IPv4 in the low 32 bits).
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The `trustedProxies` list; empty (the default) trusts nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a list of blocks separated by commas and/or spaces.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        text.split([',', ' ', '\t'])
            .filter(|item| !item.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` lies in one of the blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_hold_what_their_prefix_covers() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("127.0.0.1/32", "127.0.0.1", true),
            ("192.168.1.0/24", "192.168.1.255", true),
            ("192.168.1.0/24", "192.168.2.0", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::1", false),
            ("::1", "::1", true),
            ("::1", "::2", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "10.0.0.1", false),
            ("fd00::/8", "fdff:1::1", true),
            ("fd00::/8", "fe00::1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::", false),
            // A dual-stack socket shows IPv4 peers as mapped addresses.
            ("127.0.0.0/8", "::ffff:127.0.0.5", true),
            ("10.0.0.0/8", "::ffff:127.0.0.5", false),
        ];
        for (block, addr, inside) in cases {
            let cidr = Cidr::parse(block).unwrap();
            assert_eq!(cidr.contains(ip(addr)), inside, "{block} ∋ {addr}");
        }
    }

    #[test]
    fn malformed_blocks_are_refused_with_the_reason() {
        for (text, why) in [
            ("10.0.0.0/33", "prefix length"),
            ("::/129", "prefix length"),
            ("10.0.0.0/", "prefix length"),
            ("10.0.0.0/+8", "prefix length"),
            ("10.0.0.0/8/8", "prefix length"),
            ("10.1.2.3/8", "bits set past its /8"),
            ("fd00::1/8", "bits set past"),
            ("localhost", "not an IP address"),
            ("10.0.0", "not an IP address"),
            ("[::1]", "not an IP address"),
            ("", "not an IP address"),
        ] {
            let err = Cidr::parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_list_takes_commas_and_spaces_and_may_be_empty() {
        let list = TrustedProxies::parse("127.0.0.1/32, 10.0.0.0/8 ::1,,").unwrap();
        assert!(list.contains(ip("10.1.1.1")));
        assert!(list.contains(ip("::1")));
        assert!(list.contains(ip("127.0.0.1")));
        assert!(!list.contains(ip("127.0.0.5")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("10.0.0.0/8, nope").is_err());
    }
}
