//! The index page: with `[server] showIndex = true`, `GET /` lists the
//! mounted plugins and their routes when no plugin claims `/` — a map of
//! the site for whoever set it up. Built once per generation, when the
//! plugins are loaded, so serving it costs a copy.
//!
//! Everything on it comes from plugins and the config (names, versions,
//! mounts, patterns), so every piece is HTML-escaped.

use super::routes::shown_path;
use super::PluginSet;
use drupe_sdk::html_escape;

/// The page's HTML.
pub fn render(set: &PluginSet) -> Vec<u8> {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>drupe</title></head>\n<body>\n<h1>drupe</h1>\n",
    );
    if set.plugins.is_empty() {
        out.push_str("<p>No plugins are loaded.</p>\n");
    }
    let endpoints = set.router.endpoints();
    for (index, plugin) in set.plugins.iter().enumerate() {
        out.push_str(&format!(
            "<h2>{} <small>{}</small></h2>\n<p>mounted at <code>{}</code></p>\n<ul>\n",
            html_escape(&plugin.decl.name),
            html_escape(&plugin.decl.version),
            html_escape(shown_path(&plugin.mount))
        ));
        for e in endpoints.iter().filter(|e| e.target.plugin == index) {
            let method = e.shown_method();
            let path = shown_path(&e.pattern);
            let shown = format!("<code>{} {}</code>", html_escape(method), html_escape(path));
            // A link where following it is a plain GET of a concrete path.
            if matches!(method, "GET" | "ANY") && !path.contains('{') {
                out.push_str(&format!(
                    "<li><a href=\"{}\">{shown}</a></li>\n",
                    html_escape(path)
                ));
            } else {
                out.push_str(&format!("<li>{shown}</li>\n"));
            }
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_set_says_so() {
        let page = String::from_utf8(render(&PluginSet::default())).unwrap_or_default();
        assert!(page.contains("No plugins are loaded."), "{page}");
    }
}
