//! The benchmark's JSON route, mounted at `/json`: `GET /json/{name}`
//! answers `{"name":…,"id":42,"tags":["a","b"]}` through the SDK's `Json`,
//! the same struct and serialisation the peers in `bench/peers` answer.

use drupe_sdk::prelude::*;

/// The body: as `bench/peers/common`'s `Item`.
#[derive(Debug, serde::Serialize)]
pub struct Item {
    pub name: String,
    pub id: u32,
    pub tags: [&'static str; 2],
}

/// `GET /{name}`: the item of that name.
pub fn item(req: &Request, _ctx: &mut Context) -> Result<Json<Item>> {
    let name = req.param("name").ok_or_else(Error::not_found)?;
    Ok(Json(Item {
        name: name.to_owned(),
        id: 42,
        tags: ["a", "b"],
    }))
}

drupe_sdk::plugin! {
    name: "benchjson",
    routes: [
        GET "/{name}" => item,
    ],
}

#[cfg(test)]
mod tests {
    use drupe_sdk::testing::{TestApp, TestRequest};

    #[test]
    fn answers_the_peers_json() {
        let resp = TestApp::new().call(TestRequest::get("/bench"));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(
            resp.body_text(),
            r#"{"name":"bench","id":42,"tags":["a","b"]}"#
        );
    }
}
