//! `session`: counts a visitor's visits in their session.
//!
//! `GET /session` answers how many times this visitor (cookie
//! `drupe_session`) has been here, as decimal text: `1` on the first visit,
//! when the host also sets the cookie. The session lives in the shared
//! store, so every worker and every host counts the same visits; it ends
//! after `[store] sessionTimeout` seconds without a visit.

use drupe_sdk::prelude::*;

/// `GET /`: one more visit.
pub fn visits(_req: &Request, ctx: &mut Context) -> Result<Response> {
    let visits = ctx.session().incr("visits", 1)?;
    Ok(Response::text(visits.to_string()))
}

drupe_sdk::plugin! {
    name: "session",
    routes: [
        GET "/" => visits,
    ],
}

#[cfg(test)]
mod tests {
    use super::*;
    use drupe_sdk::testing::{TestRequest, TestStore};

    #[test]
    fn visits_count_per_visitor() {
        let store = TestStore::new();
        let first = TestRequest::get("/").store(&store).call(visits);
        assert_eq!(first.body_text(), "1");
        let cookie = first.header("Set-Cookie").unwrap_or_default();
        assert!(cookie.starts_with("drupe_session="), "{cookie}");

        let again = TestRequest::get("/")
            .store(&store)
            .cookies_from(&first)
            .call(visits);
        assert_eq!(again.body_text(), "2");
        assert_eq!(again.header("Set-Cookie"), None, "the cookie is set once");

        // Someone else starts at 1.
        let other = TestRequest::get("/").store(&store).call(visits);
        assert_eq!(other.body_text(), "1");
    }
}
