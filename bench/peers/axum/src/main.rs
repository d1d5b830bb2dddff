//! drupe's benchmark routes on axum 0.8: hyper on a tokio multi-thread
//! runtime with 2 worker threads (one per core of the benchmark machine, as
//! drupe and nginx run 2 worker processes).
//!
//! `--access-log FILE` adds a middleware that writes one Combined Log Format
//! line per request with one `write(2)` on an `O_APPEND` file, as nginx's
//! plain `access_log FILE;` does.

use axum::body::HttpBody;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header::{REFERER, USER_AGENT};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use peer_common::{Args, Item};
use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use time::format_description::FormatItem;
use time::macros::format_description;

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn greet(Path(name): Path<String>) -> String {
    format!("Hello, {name}!")
}

async fn json(Path(name): Path<String>) -> Json<Item> {
    Json(Item::new(name))
}

/// `[10/Oct/2000:13:55:36 +0000]`, the Common Log Format's time.
const STAMP: &[FormatItem<'_>] = format_description!(
    "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
);

async fn access_log(
    State(file): State<Arc<File>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    // A block, so that no borrow of the request (whose body is not `Sync`)
    // lives across the `await` below.
    let (referer, agent) = {
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned()
        };
        (header(REFERER), header(USER_AGENT))
    };
    let stamp = time::OffsetDateTime::now_utc()
        .format(STAMP)
        .unwrap_or_default();
    let head = format!(
        "{} - - [{stamp}] \"{} {} {:?}\"",
        peer.ip(),
        request.method(),
        request.uri(),
        request.version()
    );
    let response = next.run(request).await;
    let bytes = response.body().size_hint().exact().unwrap_or(0);
    let line = format!(
        "{head} {} {bytes} \"{referer}\" \"{agent}\"\n",
        response.status().as_u16()
    );
    // One write of the whole line; a full disk must not fail the request.
    let _ = (&*file).write_all(line.as_bytes());
    response
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut app = Router::new()
        .route("/hello", get(hello))
        .route("/hello/{name}", get(greet))
        .route("/json/{name}", get(json));
    if let Some(path) = &args.access_log {
        let file = File::options().create(true).append(true).open(path)?;
        app = app.layer(middleware::from_fn_with_state(Arc::new(file), access_log));
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
                .await?
                .tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        })
}
