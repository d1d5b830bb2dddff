//! What every peer shares, written once: the command line the benchmark
//! starts them with, and the struct `GET /json/{name}` serialises.

use std::path::PathBuf;

/// `--port N` (default: `$PEER_PORT`, else 8080) and `--access-log FILE`.
#[derive(Debug)]
pub struct Args {
    pub port: u16,
    /// One Combined Log Format line per request goes to this file.
    pub access_log: Option<PathBuf>,
}

impl Args {
    /// Parses the process's arguments; exits with a usage line on a bad one.
    pub fn parse() -> Args {
        Self::parse_from(std::env::args().skip(1)).unwrap_or_else(|e| {
            eprintln!("{e}; usage: [--port N] [--access-log FILE]");
            std::process::exit(2)
        })
    }

    fn parse_from(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let port = std::env::var("PEER_PORT").ok();
        let mut parsed = Args {
            port: port
                .as_deref()
                .unwrap_or("8080")
                .parse()
                .map_err(|_| "bad PEER_PORT")?,
            access_log: None,
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--port" => {
                    parsed.port = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .ok_or("--port needs a number")?
                }
                "--access-log" => {
                    parsed.access_log = Some(args.next().ok_or("--access-log needs a file")?.into())
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        Ok(parsed)
    }
}

/// The body of `GET /json/{name}`: `{"name":…,"id":42,"tags":["a","b"]}`.
#[derive(Debug, serde::Serialize)]
pub struct Item {
    pub name: String,
    pub id: u32,
    pub tags: [&'static str; 2],
}

impl Item {
    pub fn new(name: String) -> Item {
        Item {
            name,
            id: 42,
            tags: ["a", "b"],
        }
    }
}
