//! Exact counting through the real binary: many keep-alive clients POST
//! `/counter/KEY` over many keys at once; every answer must be 200 and
//! every key must end at exactly the number of POSTs it got. Shared by the
//! Redis tests with credentials, TLS and Cluster.

use crate::support::{Client, Server};
use std::time::{Duration, Instant};

/// `total` POSTs from `clients` connections over `keys` keys (`k0`…),
/// then checks every key. Returns how long the POSTs took.
pub fn count_exactly(server: &Server, clients: usize, total: usize, keys: usize) -> Duration {
    let per_client = total / clients;
    assert_eq!(per_client * clients, total);
    assert_eq!(total % keys, 0);
    let addr = server.addr();
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                for n in 0..per_client {
                    let key = (c * per_client + n) % keys;
                    let resp = client.roundtrip(&format!(
                        "POST /counter/k{key} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                    ));
                    assert_eq!(resp.status, 200, "client {c}, POST {n}: {}", resp.text());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
    let took = started.elapsed();
    let mut client = server.connect();
    for key in 0..keys {
        let resp = client.roundtrip(&format!("GET /counter/k{key} HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert_eq!(
            resp.text(),
            (total / keys).to_string(),
            "key k{key}: {}",
            server.log()
        );
    }
    took
}
