//! `hello`: the smallest useful drupe plugin.
//!
//! `GET /hello` answers `Hello, World!`; `GET /hello/{name}` answers
//! `Hello, {name}!`, where the greeting comes from the `greeting` key of the
//! `[plugin.hello]` INI section (default `Hello`).

use drupe_sdk::prelude::*;

/// `GET /`: the classic.
pub fn index(_req: &Request, _ctx: &mut Context) -> Result<Response> {
    Ok(Response::text("Hello, World!"))
}

/// `GET /{name}`: greets `name` with the configured greeting.
pub fn greet(req: &Request, ctx: &mut Context) -> Result<Response> {
    let name = req.param("name").ok_or_else(Error::not_found)?;
    let greeting = ctx.setting("greeting").unwrap_or("Hello");
    Ok(Response::text(format!("{greeting}, {name}!")))
}

drupe_sdk::plugin! {
    name: "hello",
    routes: [
        GET "/" => index,
        GET "/{name}" => greet,
    ],
}

#[cfg(test)]
mod tests {
    use super::*;
    use drupe_sdk::testing::TestRequest;

    #[test]
    fn index_says_hello_world() {
        let resp = TestRequest::get("/").mount("/hello").call(index);
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(resp.body_text(), "Hello, World!");
    }

    #[test]
    fn greet_uses_default_greeting() {
        let resp = TestRequest::get("/bob").param("name", "bob").call(greet);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_text(), "Hello, bob!");
    }

    #[test]
    fn greet_uses_configured_greeting() {
        let resp = TestRequest::get("/ana")
            .param("name", "ana")
            .setting("greeting", "Hi")
            .call(greet);
        assert_eq!(resp.body_text(), "Hi, ana!");
    }

    #[test]
    fn greet_shows_the_decoded_name() {
        // The host percent-decodes path parameters before the handler sees them.
        let resp = TestRequest::get("/J%C3%BCrgen")
            .param("name", "Jürgen")
            .call(greet);
        assert_eq!(resp.body_text(), "Hello, Jürgen!");
    }
}
