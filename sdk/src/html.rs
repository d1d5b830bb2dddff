//! Escaping text for HTML: the one escaper of the project, used by plugins
//! that build pages (see [`Html`](crate::Html)) and by the host's own pages.

/// `text` made safe for HTML content and for a quoted attribute value
/// (`"…"` or `'…'`): `&`, `<`, `>`, `"` and `'` become entities, nothing
/// else changes. Use it on everything a visitor typed before it goes into
/// a page.
///
/// ```
/// use drupe_sdk::prelude::*;
/// use drupe_sdk::html_escape;
///
/// fn hello(req: &Request, _ctx: &mut Context) -> Result<Response> {
///     let name = html_escape(&req.query_param("name").unwrap_or_default());
///     Ok(Response::html(format!("<p title=\"{name}\">Hello, {name}!</p>")))
/// }
///
/// let resp = drupe_sdk::testing::TestRequest::get("/?name=%3Cb%3E%22A%26B%22").call(hello);
/// assert_eq!(
///     resp.body_text(),
///     "<p title=\"&lt;b&gt;&quot;A&amp;B&quot;\">Hello, &lt;b&gt;&quot;A&amp;B&quot;!</p>"
/// );
/// ```
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_ampersands_only() {
        assert_eq!(
            html_escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            html_escape("plain — ünïcode 1+1=2"),
            "plain — ünïcode 1+1=2"
        );
        // Already escaped text is escaped again: the function is for raw text.
        assert_eq!(html_escape("&amp;"), "&amp;amp;");
    }
}
