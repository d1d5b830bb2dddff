//! The HTML page. Everything a user typed goes through [`html_escape`] on
//! its way in: note text, author names.

use crate::Note;
use drupe_sdk::html_escape;

/// The colour scheme, from the `theme` cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    pub fn parse(name: &str) -> Option<Theme> {
        match name {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    /// The cookie's theme; light without one (or with a bad one).
    pub fn from_cookie(value: Option<&str>) -> Theme {
        value.and_then(Theme::parse).unwrap_or(Theme::Light)
    }

    pub fn name(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    fn other(self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }
}

/// The whole page for the plugin mounted at `base`, whose own address is
/// `home` (`base`, or `/` at the root).
pub fn render(base: &str, home: &str, theme: Theme, user: Option<&str>, notes: &[Note]) -> String {
    let (base, home) = (html_escape(base), html_escape(home));
    let (bg, fg) = match theme {
        Theme::Light => ("#fff", "#222"),
        Theme::Dark => ("#222", "#eee"),
    };
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Notes</title>\
         <style>body{{background:{bg};color:{fg};font-family:sans-serif}}</style></head>\
         <body class=\"{theme}\"><h1>Notes</h1>\n",
        theme = theme.name()
    );
    match user {
        Some(user) => html.push_str(&format!(
            "<p>Logged in as {user}. <form method=\"post\" action=\"{base}/logout\">\
             <button>Log out</button></form></p>\n\
             <form method=\"post\" action=\"{home}\"><textarea name=\"text\"></textarea>\
             <button>Add</button></form>\n\
             <p><a href=\"{base}/export\">Download all</a></p>\n",
            user = html_escape(user)
        )),
        None => html.push_str(&format!(
            "<form method=\"post\" action=\"{base}/login\">\
             <input name=\"user\" placeholder=\"name\"> \
             <input name=\"password\" type=\"password\" placeholder=\"password\"> \
             <button>Log in</button></form>\n"
        )),
    }
    html.push_str("<ul>\n");
    for note in notes {
        html.push_str(&format!(
            "<li>{} <small>— {}</small></li>\n",
            html_escape(&note.text),
            html_escape(&note.author)
        ));
    }
    html.push_str(&format!(
        "</ul>\n<p><a href=\"{base}/theme/{other}\">{other} theme</a></p></body></html>\n",
        other = theme.other().name()
    ));
    html
}
