//! The style sheet and the one small script, compiled into the binary.

/// The asset at `path`, with its content type.
pub(crate) fn get(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/static/app.css" => Some(("text/css; charset=utf-8", include_str!("../assets/app.css"))),
        "/static/live.js" => Some((
            "text/javascript; charset=utf-8",
            include_str!("../assets/live.js"),
        )),
        _ => None,
    }
}
