//! Large bodies and files end to end (issue 14): `Response::file` sent with
//! sendfile (validators, 304, 206, 416, HEAD), `[static]` folders and the
//! ways out of them, `Response::stream`, and memory that stays flat while
//! many clients download — or one never reads.

use crate::support::{Client, Response, Server, Site};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const BIG: usize = 20 << 20;

/// `len` bytes that differ everywhere (a shifted copy would not match).
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// FNV-1a, as testkit's `/count-body` computes it.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A site whose `files/` folder holds `big.bin` (20 MiB of noise) and
/// `hello.txt`, served by testkit's `/file/{*path}` and by `[static]`
/// at `/assets` (`public/`, with a secret next to it).
fn site(server: &str) -> (Site, Vec<u8>) {
    let site = Site::new(&["hello", "testkit"], server);
    let files = site.path("files");
    std::fs::create_dir(&files).expect("files/");
    let big = noise(BIG);
    std::fs::write(files.join("big.bin"), &big).expect("big.bin");
    std::fs::write(files.join("hello.txt"), "hello, file\n").expect("hello.txt");
    let public = site.path("public");
    std::fs::create_dir_all(public.join("docs")).expect("public/docs");
    std::fs::write(public.join("app.css"), "body{}\n").expect("app.css");
    std::fs::write(public.join(".env"), "SECRET=1\n").expect(".env");
    std::fs::write(public.join("docs/index.html"), "<h1>docs</h1>\n").expect("index");
    std::fs::write(site.path("secret.txt"), "top secret\n").expect("secret");
    std::os::unix::fs::symlink(site.path("secret.txt"), public.join("out.txt")).expect("link");
    std::os::unix::fs::symlink("app.css", public.join("in.css")).expect("link");
    let ini = format!(
        "[plugin.testkit]\nfileRoot = {}\n[static]\n/assets = public\n",
        files.display()
    );
    (site.with_ini(&ini), big)
}

fn one_worker(threads: usize) -> String {
    format!("[server]\nsocketPort = 0\nfixedNumberOfProcesses = 1\nthreadPool = {threads}\n")
}

fn get(server: &Server, path: &str, headers: &str) -> Response {
    let mut client = server.connect();
    client.roundtrip(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n"))
}

#[test]
fn a_file_arrives_byte_for_byte_with_its_validators() {
    let (site, big) = site(&one_worker(2));
    let server = site.start();
    let resp = get(&server, "/testkit/file/big.bin", "");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), BIG);
    assert_eq!(fnv(&resp.body), fnv(&big), "the bytes differ");
    assert_eq!(resp.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/octet-stream")
    );
    assert!(resp.header("Last-Modified").is_some());
    let etag = resp.header("ETag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let text = get(&server, "/testkit/file/hello.txt", "");
    assert_eq!(
        text.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(text.text(), "hello, file\n");

    // Several requests on one connection, the file in between: the one
    // behind it is answered once the file is out.
    let mut client = server.connect();
    client.send(
        b"GET /testkit/file/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(client.read_response(false).text(), "hello, file\n");
    assert_eq!(client.read_response(false).text(), "Hello, World!");

    let missing = get(&server, "/testkit/file/nope.bin", "");
    assert_eq!(missing.status, 404);
    let folder = get(&server, "/testkit/file/", "");
    assert_eq!(folder.status, 404, "a folder is not a file");
}

#[test]
fn conditional_range_and_head_requests() {
    let (site, big) = site(&one_worker(2));
    let server = site.start();
    let first = get(&server, "/testkit/file/hello.txt", "");
    let etag = first.header("ETag").expect("ETag").to_owned();
    let modified = first
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_owned();

    let same = get(
        &server,
        "/testkit/file/hello.txt",
        &format!("If-None-Match: {etag}\r\n"),
    );
    assert_eq!(same.status, 304);
    assert!(same.body.is_empty());
    assert_eq!(same.header("ETag"), Some(etag.as_str()));
    let since = get(
        &server,
        "/testkit/file/hello.txt",
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(since.status, 304);
    let other = get(
        &server,
        "/testkit/file/hello.txt",
        "If-None-Match: \"other\"\r\n",
    );
    assert_eq!(other.status, 200);

    let part = get(
        &server,
        "/testkit/file/big.bin",
        "Range: bytes=1000-1999\r\n",
    );
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("Content-Range"),
        Some(&*format!("bytes 1000-1999/{BIG}"))
    );
    assert_eq!(part.body, &big[1000..2000]);
    let tail = get(&server, "/testkit/file/big.bin", "Range: bytes=-10\r\n");
    assert_eq!((tail.status, &tail.body[..]), (206, &big[BIG - 10..]));
    let past = get(
        &server,
        "/testkit/file/big.bin",
        &format!("Range: bytes={BIG}-\r\n"),
    );
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("Content-Range"),
        Some(&*format!("bytes */{BIG}"))
    );
    let several = get(
        &server,
        "/testkit/file/hello.txt",
        "Range: bytes=0-1,3-4\r\n",
    );
    assert_eq!(
        (several.status, several.text().as_str()),
        (200, "hello, file\n")
    );

    let mut client = server.connect();
    let head = client.roundtrip("HEAD /testkit/file/big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some(&*BIG.to_string()));
    // Nothing followed the head: the connection answers the next request.
    let next = client.roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(next.text(), "Hello, World!");
}

#[test]
fn static_folders_serve_files_and_refuse_every_way_out() {
    let (site, _) = site(&one_worker(2));
    let server = site.start();
    let css = get(&server, "/assets/app.css", "");
    assert_eq!((css.status, css.text().as_str()), (200, "body{}\n"));
    assert_eq!(css.header("Content-Type"), Some("text/css; charset=utf-8"));
    let inside = get(&server, "/assets/in.css", "");
    assert_eq!(inside.status, 200, "a symlink inside the folder works");
    let index = get(&server, "/assets/docs/", "");
    assert_eq!(
        (index.status, index.text().as_str()),
        (200, "<h1>docs</h1>\n")
    );
    let bare = get(&server, "/assets/docs?x=1", "");
    assert_eq!(bare.status, 301);
    assert_eq!(bare.header("Location"), Some("/assets/docs/?x=1"));
    for path in [
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/%2e%2e%2fsecret.txt",
        "/assets/docs/..%2f..%2fsecret.txt",
        "/assets/out.txt",
        "/assets/.env",
        "/assets/%2eenv",
        "/assets/nope.css",
    ] {
        let resp = get(&server, path, "");
        assert!(
            matches!(resp.status, 400 | 404),
            "{path}: {} {}",
            resp.status,
            resp.text()
        );
        assert!(
            !resp.text().contains("SECRET") && !resp.text().contains("top secret"),
            "{path}"
        );
    }
    let mut client = server.connect();
    let post =
        client.roundtrip("POST /assets/app.css HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(post.status, 405);
}

/// Reads a chunked body (after the head) to its end.
fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("chunk size");
        let size = usize::from_str_radix(line.trim(), 16).expect("hex size");
        let mut chunk = vec![0u8; size + 2];
        reader.read_exact(&mut chunk).expect("chunk");
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

fn read_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("head line");
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            return head;
        }
    }
}

#[test]
fn streams_arrive_whole_chunked_or_sized() {
    let (site, _) = site(&one_worker(2));
    let server = site.start();
    let n = 3_000_000;
    let expected: Vec<u8> = (0..n).map(|i| b'0' + (i % 10) as u8).collect();
    let stream = TcpStream::connect(server.addr()).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    (&stream)
        .write_all(format!("GET /testkit/stream/{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .expect("send");
    let head = read_head(&mut reader);
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert_eq!(read_chunked(&mut reader), expected);
    // Same connection: the stream's end left it usable.
    (&stream)
        .write_all(format!("GET /testkit/stream-sized/{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .expect("send");
    let head = read_head(&mut reader);
    assert!(head.contains(&format!("Content-Length: {n}\r\n")), "{head}");
    let mut body = vec![0u8; n];
    reader.read_exact(&mut body).expect("sized body");
    assert_eq!(body, expected);
}

/// The worker's resident memory in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Downloads `path` `clients` times at once; returns the worker's highest
/// RSS seen meanwhile (KiB) and checks every body's length.
fn parallel_downloads(server: &Server, worker: i32, path: &str, clients: usize, len: usize) -> u64 {
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let addr = server.addr();
            let path = path.to_owned();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                (&stream)
                    .write_all(
                        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .expect("send");
                let head = read_head(&mut reader);
                let mut buf = vec![0u8; 256 << 10];
                let mut total = 0;
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => total += n,
                        Err(e) => panic!("download: {e}"),
                    }
                    // Slower than the server, so the downloads overlap.
                    std::thread::sleep(Duration::from_millis(1));
                }
                if head.contains("chunked") {
                    total // framing included: at least the body
                } else {
                    assert_eq!(total, len, "{head}");
                    total
                }
            })
        })
        .collect();
    let mut peak = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        peak = peak.max(rss_kib(worker));
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in threads {
        assert!(t.join().expect("client") >= len);
    }
    peak
}

#[test]
fn sixteen_parallel_downloads_keep_the_worker_small() {
    let _serial = crate::support::exclusive();
    let (site, _) = site(&one_worker(2));
    let server = site.start();
    // Warm up (and load the file into the page cache) before measuring.
    assert_eq!(get(&server, "/testkit/file/hello.txt", "").status, 200);
    let worker = server.worker_pids()[0];
    let idle = rss_kib(worker);
    let peak = parallel_downloads(&server, worker, "/testkit/file/big.bin", 16, BIG);
    eprintln!("files: worker RSS idle {idle} KiB, peak {peak} KiB during 16 downloads");
    assert!(
        peak <= idle + (64 << 10),
        "RSS grew from {idle} to {peak} KiB"
    );
    let peak = parallel_downloads(&server, worker, &format!("/testkit/stream/{BIG}"), 16, BIG);
    eprintln!("streams: worker RSS idle {idle} KiB, peak {peak} KiB during 16 downloads");
    assert!(
        peak <= idle + (64 << 10),
        "RSS grew from {idle} to {peak} KiB"
    );
}

#[test]
fn a_client_that_never_reads_a_download_delays_no_one() {
    let (site, _) = site(&one_worker(1));
    let server = site.start();
    for path in [
        "/testkit/file/big.bin",
        "/assets/app.css",
        &format!("/testkit/stream/{BIG}"),
    ] {
        let stalled = TcpStream::connect(server.addr()).expect("connect");
        nix::sys::socket::setsockopt(&stalled, nix::sys::socket::sockopt::RcvBuf, &4096)
            .expect("SO_RCVBUF");
        (&stalled)
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .expect("send");
        // The only thread is free for others while that download waits.
        let started = Instant::now();
        for _ in 0..5 {
            let mut client = Client::connect(server.addr());
            let resp = client.roundtrip("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
            assert_eq!(resp.text(), "Hello, World!");
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: others waited {:?}",
            started.elapsed()
        );
        drop(stalled);
    }
}

/// Sends a `len`-byte body (a 1 MiB block of noise, repeated) to testkit's
/// `/count-body` while sampling the worker's RSS; returns the answer and
/// the peak RSS (KiB). `chunked`: sent with chunked framing.
fn upload(server: &Server, worker: i32, len: usize, chunked: bool) -> (String, String, u64) {
    let block = noise(1 << 20);
    let mut expected = 0xcbf2_9ce4_8422_2325u64;
    let stream = TcpStream::connect(server.addr()).expect("connect");
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {len}")
    };
    let sender = {
        let mut stream = stream.try_clone().expect("clone");
        let block = block.clone();
        std::thread::spawn(move || {
            let head = format!("POST /testkit/count-body HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n");
            stream.write_all(head.as_bytes()).expect("head");
            let mut sent = 0;
            while sent < len {
                let n = block.len().min(len - sent);
                if chunked {
                    stream
                        .write_all(format!("{n:x}\r\n").as_bytes())
                        .expect("size");
                }
                stream.write_all(&block[..n]).expect("body");
                if chunked {
                    stream.write_all(b"\r\n").expect("crlf");
                }
                sent += n;
            }
            if chunked {
                stream.write_all(b"0\r\n\r\n").expect("last chunk");
            }
        })
    };
    let mut sent = 0;
    while sent < len {
        let n = block.len().min(len - sent);
        expected = block[..n].iter().fold(expected, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        sent += n;
    }
    let mut peak = rss_kib(worker);
    while !sender.is_finished() {
        peak = peak.max(rss_kib(worker));
        std::thread::sleep(Duration::from_millis(20));
    }
    sender.join().expect("sender");
    let mut client = Client::from_stream(stream);
    let resp = client.read_response(false);
    peak = peak.max(rss_kib(worker));
    assert_eq!(resp.status, 200, "{}", resp.text());
    (resp.text(), format!("{len} {expected:016x}"), peak)
}

#[test]
fn a_200_mib_upload_is_read_by_the_handler_with_bounded_memory() {
    let _serial = crate::support::exclusive();
    let (site, _) = site(&one_worker(2));
    let site = site.with_ini("[limits]\nmaxBodyBytes = 1073741824\nbodyFolder = .\n");
    let folder = site.dir.path().to_owned();
    let server = site.start();
    assert_eq!(get(&server, "/hello", "").status, 200);
    let worker = server.worker_pids()[0];
    let idle = rss_kib(worker);
    let (got, expected, peak) = upload(&server, worker, 200 << 20, false);
    eprintln!("upload: worker RSS idle {idle} KiB, peak {peak} KiB for 200 MiB");
    assert_eq!(got, expected);
    assert!(
        peak <= idle + (64 << 10),
        "RSS grew from {idle} to {peak} KiB"
    );
    let (got, expected, _) = upload(&server, worker, (5 << 20) + 7, true);
    assert_eq!(got, expected, "chunked");
    // Small bodies stay in memory and still read the same way.
    let (got, expected, _) = upload(&server, worker, 1000, false);
    assert_eq!(got, expected, "small");
    // The spool files had no name: nothing was left in bodyFolder.
    let left: Vec<_> = std::fs::read_dir(&folder)
        .expect("site folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("drupe-body"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
