//! Redis over TLS on loopback: a throwaway CA and a server certificate for
//! `127.0.0.1`, made with the `openssl` command, and a `redis-server` that
//! speaks TLS on one port (and plain RESP on another, for the helpers).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::redis::{free_port, RedisServer};

/// A CA and a certificate it signed for `127.0.0.1`, in a temp folder.
#[derive(Debug)]
pub struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    /// Makes them (an EC P-256 key each, valid for a day).
    ///
    /// # Panics
    /// If `openssl` is not installed or fails.
    pub fn make() -> Certificates {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let d = dir.path();
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            d,
            &["req", "-x509"],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=drupe test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            d,
            &["req"],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        openssl(
            d,
            &["x509", "-req"],
            &[],
            &[
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "1",
                "-extfile",
                "server.ext",
            ],
        );
        Certificates { dir }
    }

    /// The CA's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

fn openssl(dir: &Path, command: &[&str], key: &[&str], args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(command)
        .args(key)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}); the TLS tests need it: apt-get install openssl")
        });
    assert!(
        out.status.success(),
        "openssl {command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `redis-server` speaking TLS with [`Certificates`].
#[derive(Debug)]
pub struct TlsRedis {
    pub server: RedisServer,
    pub tls_port: u16,
    pub certificates: Certificates,
}

impl TlsRedis {
    /// Starts it, with `extra` arguments (a password, users).
    pub fn start(extra: &[&str]) -> TlsRedis {
        let certificates = Certificates::make();
        let tls_port = free_port();
        let port = tls_port.to_string();
        let (cert, key, ca) = (
            certificates.path("server.pem"),
            certificates.path("server.key"),
            certificates.path("ca.pem"),
        );
        let mut args = vec![
            "--tls-port",
            &port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ];
        args.extend_from_slice(extra);
        TlsRedis {
            server: RedisServer::start_with(&args),
            tls_port,
            certificates,
        }
    }

    /// `rediss://[AUTH@]127.0.0.1:TLS_PORT/0?ca=CA`.
    pub fn url(&self, auth: &str) -> String {
        format!(
            "rediss://{auth}127.0.0.1:{}/0?ca={}",
            self.tls_port,
            self.certificates.ca().display()
        )
    }
}
