//! Markdown to HTML with pulldown-cmark, made safe: raw HTML in the text is shown as text,
//! and links and images keep only `http`, `https`, `mailto`, fragment and relative targets
//! (a relative image resolves against the file's directory at the same revision, served by
//! `/raw/`).

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

/// Whether a link target may be kept.
fn safe_target(t: &str) -> bool {
    let lower = t.trim().to_ascii_lowercase();
    match lower.find(':') {
        // A scheme comes before any `/`, `?` or `#`.
        Some(colon) if !lower[..colon].contains(['/', '?', '#']) => {
            ["http", "https", "mailto"].contains(&&lower[..colon])
        }
        _ => true,
    }
}

/// `text` rendered; `raw_base` is the `/raw/` URL prefix of the file's directory (with a
/// trailing `/`) and `rev_query` the `?rev=…` that follows a relative image.
pub(crate) fn render(text: &str, raw_base: &str, rev_query: &str) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TASKLISTS);
    let events = Parser::new_ext(text, opts).map(|ev| match ev {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Link {
            link_type,
            dest_url: if safe_target(&dest_url) {
                dest_url
            } else {
                CowStr::Borrowed("#")
            },
            title,
            id,
        }),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let relative = !dest_url.contains(':') && !dest_url.starts_with('/');
            let dest_url = if relative && !dest_url.is_empty() {
                CowStr::from(format!(
                    "{raw_base}{}{rev_query}",
                    crate::url::encode_path(dest_url.trim_start_matches("./").as_bytes())
                ))
            } else if dest_url.starts_with('/') {
                dest_url
            } else {
                // Images from elsewhere are refused by the page's policy anyway.
                CowStr::Borrowed("")
            };
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            })
        }
        other => other,
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_is_text_and_scripts_are_not_links() {
        let out = render(
            "# T\n\n<script>alert(1)</script>\n\nhi <b onclick=x>b</b> [x](javascript:alert(1)) [y](https://e.org/a) ![i](img/a.png)\n",
            "/raw/docs/",
            "?rev=main",
        );
        assert!(!out.contains("<script>") && !out.contains("<b "), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(out.contains("href=\"https://e.org/a\""), "{out}");
        assert!(
            out.contains("src=\"/raw/docs/img/a.png?rev=main\""),
            "{out}"
        );
    }
}
