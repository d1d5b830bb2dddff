//! Typed input with serde: [`Request::json`], [`Request::form`] and
//! [`Request::query_as`], and the conversions of serde's errors into
//! [`Error`], so `?` answers the client with the right status.
//!
//! Statuses follow what axum's extractors answer: 415 when the body is not
//! of the expected media type, 400 when it cannot be read at all, 422 when
//! it reads but does not fit the type.

use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::request::Request;

/// Whether a `Content-Type` value names `essence` (`type/subtype`),
/// ignoring case and parameters such as `charset`.
fn media_type_is(content_type: &str, test: impl Fn(&str, &str) -> bool) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence.split_once('/') {
        Some((kind, subtype)) => test(&kind.to_ascii_lowercase(), &subtype.to_ascii_lowercase()),
        None => false,
    }
}

impl<'a> Request<'a> {
    /// Fails with 415 unless `Content-Type` passes `test`.
    fn expect_content_type(
        &self,
        expected: &str,
        test: impl Fn(&str, &str) -> bool,
    ) -> Result<(), Error> {
        match self.header("content-type") {
            Some(ct) if media_type_is(ct, test) => Ok(()),
            Some(ct) => Err(Error::new(
                415,
                format!("expected a body of type {expected}, not `{ct}`"),
            )),
            None => Err(Error::new(
                415,
                format!("expected a body of type {expected}; the request has no Content-Type"),
            )),
        }
    }

    /// The JSON body as a `T`.
    ///
    /// # Errors
    /// 415 unless `Content-Type` is `application/json` or another
    /// `…/…+json` type (parameters such as `charset` are fine); 400 when
    /// the body is not JSON; 422 when it is JSON but not a `T` (a missing
    /// field, a wrong type).
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::TestRequest;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct NewNote { text: String }
    ///
    /// fn create(req: &Request, _ctx: &mut Context) -> Result<Response> {
    ///     let note: NewNote = req.json()?;
    ///     Ok(Response::text(note.text).with_status(201))
    /// }
    ///
    /// let post = |ct: &str, body: &str| {
    ///     TestRequest::post("/", body).header("Content-Type", ct).call(create).status()
    /// };
    /// assert_eq!(post("application/json", r#"{"text":"tea"}"#), 201);
    /// assert_eq!(post("text/plain", r#"{"text":"tea"}"#), 415);
    /// assert_eq!(post("application/json", r#"{"text":"#), 400);
    /// assert_eq!(post("application/json", r#"{"txt":"tea"}"#), 422);
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.expect_content_type("application/json", |kind, subtype| {
            (kind == "application" && subtype == "json") || subtype.ends_with("+json")
        })?;
        Ok(serde_json::from_slice(self.body())?)
    }

    /// The `application/x-www-form-urlencoded` body (an HTML form post) as
    /// a `T`.
    ///
    /// # Errors
    /// 415 for any other `Content-Type`; 400 when the body is not UTF-8;
    /// 422 when a field is missing or has the wrong type.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::TestRequest;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Login { user: String, remember: Option<bool> }
    ///
    /// fn login(req: &Request, _ctx: &mut Context) -> Result<Response> {
    ///     let form: Login = req.form()?;
    ///     Ok(Response::text(format!("{} {:?}", form.user, form.remember)))
    /// }
    ///
    /// let resp = TestRequest::post("/", "user=ana+b&remember=true")
    ///     .header("Content-Type", "application/x-www-form-urlencoded")
    ///     .call(login);
    /// assert_eq!(resp.body_text(), "ana b Some(true)");
    /// let resp = TestRequest::post("/", "remember=true")
    ///     .header("Content-Type", "application/x-www-form-urlencoded")
    ///     .call(login);
    /// assert_eq!(resp.status(), 422);
    /// ```
    pub fn form<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.expect_content_type("application/x-www-form-urlencoded", |kind, subtype| {
            kind == "application" && subtype == "x-www-form-urlencoded"
        })?;
        let body = self.body_str()?;
        Ok(serde_urlencoded::from_str(body)?)
    }

    /// The query string as a `T`; a missing optional field is `None`.
    ///
    /// # Errors
    /// 400 when the query does not fit `T`.
    ///
    /// ```
    /// use drupe_sdk::prelude::*;
    /// use drupe_sdk::testing::TestRequest;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Page { page: Option<u32>, q: String }
    ///
    /// fn search(req: &Request, _ctx: &mut Context) -> Result<Response> {
    ///     let p: Page = req.query_as()?;
    ///     Ok(Response::text(format!("{} {}", p.q, p.page.unwrap_or(1))))
    /// }
    ///
    /// assert_eq!(TestRequest::get("/?q=green+tea").call(search).body_text(), "green tea 1");
    /// assert_eq!(TestRequest::get("/?q=x&page=two").call(search).status(), 400);
    /// ```
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_urlencoded::from_str(self.query())
            .map_err(|e| Error::bad_request(format!("query string: {e}")))
    }
}

impl From<serde_json::Error> for Error {
    /// JSON that came with the request: 400 when it is not JSON, 422 when
    /// it does not fit the type asked for. (A response that fails to
    /// serialise is a 500: [`Response::json`](crate::Response::json) and
    /// [`Json`](crate::Json) see to that.)
    fn from(e: serde_json::Error) -> Error {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof => Error::bad_request(format!("invalid JSON: {e}")),
            Category::Data => Error::new(422, format!("unexpected JSON: {e}")),
            Category::Io => Error::internal(format!("reading JSON: {e}")),
        }
    }
}

impl From<serde_urlencoded::de::Error> for Error {
    /// A form or query that does not fit the type asked for: 422.
    fn from(e: serde_urlencoded::de::Error) -> Error {
        Error::new(422, format!("unexpected form data: {e}"))
    }
}

impl From<serde_urlencoded::ser::Error> for Error {
    /// A value that cannot be written as a form or query: 500.
    fn from(e: serde_urlencoded::ser::Error) -> Error {
        Error::internal(format!("encoding form data: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        let json = |ct: &str| {
            media_type_is(ct, |k, s| {
                (k == "application" && s == "json") || s.ends_with("+json")
            })
        };
        assert!(json("application/json"));
        assert!(json("Application/JSON; charset=utf-8"));
        assert!(json("application/problem+json"));
        assert!(!json("text/plain"));
        assert!(!json("application/jsonx"));
        assert!(!json("json"));
    }
}
