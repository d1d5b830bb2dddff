//! `counter`: named counters in the shared store.
//!
//! `GET /counter/{name}` answers the current value as decimal text (0 if
//! the counter was never incremented); `POST /counter/{name}` increments it
//! atomically and answers the new value. Every worker and every host that
//! shares the store counts into the same counter, and no increment is ever
//! lost. If the store cannot be reached, both answer 503.

use drupe_sdk::prelude::*;

/// `GET /{name}`: the current value.
pub fn show(req: &Request, ctx: &mut Context) -> Result<Response> {
    let name = req.param("name").ok_or_else(Error::not_found)?;
    let value = ctx.store().get_i64(name)?.unwrap_or(0);
    Ok(Response::text(value.to_string()))
}

/// `POST /{name}`: add one, answer the new value.
pub fn increment(req: &Request, ctx: &mut Context) -> Result<Response> {
    let name = req.param("name").ok_or_else(Error::not_found)?;
    let value = ctx.store().incr(name, 1)?;
    Ok(Response::text(value.to_string()))
}

drupe_sdk::plugin! {
    name: "counter",
    routes: [
        GET "/{name}" => show,
        POST "/{name}" => increment,
    ],
}

#[cfg(test)]
mod tests {
    use super::*;
    use drupe_sdk::testing::{TestRequest, TestStore};

    fn get(store: &TestStore, name: &str) -> Response {
        TestRequest::get(&format!("/{name}"))
            .param("name", name)
            .store(store)
            .call(show)
    }

    fn post(store: &TestStore, name: &str) -> Response {
        TestRequest::post(&format!("/{name}"), "")
            .param("name", name)
            .store(store)
            .call(increment)
    }

    #[test]
    fn an_unknown_counter_is_zero() {
        let resp = get(&TestStore::new(), "x");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body_text(), "0");
    }

    #[test]
    fn post_increments_and_answers_the_new_value() {
        let store = TestStore::new();
        assert_eq!(post(&store, "x").body_text(), "1");
        assert_eq!(post(&store, "x").body_text(), "2");
        assert_eq!(post(&store, "y").body_text(), "1");
        assert_eq!(get(&store, "x").body_text(), "2");
    }

    #[test]
    fn an_unreachable_store_is_503() {
        let store = TestStore::new();
        store.set_unavailable(true);
        assert_eq!(post(&store, "x").status(), 503);
        assert_eq!(get(&store, "x").status(), 503);
        store.set_unavailable(false);
        assert_eq!(post(&store, "x").body_text(), "1");
    }
}
