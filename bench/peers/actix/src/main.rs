//! drupe's benchmark routes on actix-web 4 with 2 workers (one per core of
//! the benchmark machine, as drupe and nginx run 2 worker processes).
//!
//! `--access-log FILE` wraps the app in actix's own `middleware::Logger`
//! with the Combined Log Format's fields, logging through `env_logger` into
//! FILE (opened `O_APPEND`, one `write(2)` per line, as nginx's plain
//! `access_log FILE;` does). actix prints `%t` in RFC 3339, not in the
//! Common Log Format's `[10/Oct/2000:13:55:36 +0000]`.

use actix_web::middleware::{Condition, Logger};
use actix_web::{web, App, HttpServer};
use peer_common::{Args, Item};
use std::io::Write;

/// Combined Log Format in actix's `Logger` syntax.
const COMBINED: &str = r#"%a - - [%t] "%r" %s %b "%{Referer}i" "%{User-Agent}i""#;

async fn hello() -> &'static str {
    "Hello, World!"
}

async fn greet(name: web::Path<String>) -> String {
    format!("Hello, {name}!")
}

async fn json(name: web::Path<String>) -> web::Json<Item> {
    web::Json(Item::new(name.into_inner()))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let logging = args.access_log.is_some();
    if let Some(path) = &args.access_log {
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)?;
        env_logger::Builder::new()
            .filter_level(log::LevelFilter::Off)
            .filter_module("actix_web::middleware::logger", log::LevelFilter::Info)
            .format(|buf, record| writeln!(buf, "{}", record.args()))
            .target(env_logger::Target::Pipe(Box::new(file)))
            .init();
    }
    HttpServer::new(move || {
        App::new()
            .wrap(Condition::new(logging, Logger::new(COMBINED)))
            .route("/hello", web::get().to(hello))
            .route("/hello/{name}", web::get().to(greet))
            .route("/json/{name}", web::get().to(json))
    })
    .workers(2)
    .bind(("127.0.0.1", args.port))?
    .run()
    .await
}
