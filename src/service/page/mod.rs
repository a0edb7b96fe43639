//! The chat page the `fanout` binary serves on `GET /`: pick a name and a
//! room, see who is there, chat, get the room's recent history on joining
//! and what was missed after a drop. Three files built into the binary
//! (no CDN, no build step); the script speaks the raw room protocol
//! (`?name=`, `?history=`, `?since=&epoch=`) to `/chat/{room}` on the
//! page's own origin (`wss://` when served over https).
//!
//! An upgrade on `/` never gets here: it stays the default room.

use bytes::Bytes;

use crate::http::{Request, Response};

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("chat.js");
const STYLE: &str = include_str!("chat.css");

/// The page's own files and nothing else: scripts only from here, sockets
/// only to this origin, never framed (a chat box inside someone else's
/// page could be used to trick its users).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The file at `path`, with its media type.
fn file(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" => Some((INDEX, "text/html; charset=utf-8")),
        "/page/chat.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        "/page/chat.css" => Some((STYLE, "text/css; charset=utf-8")),
        _ => None,
    }
}

/// The answer to a plain request for one of the page's files (GET or
/// HEAD; 405 otherwise), or `None` for any other path.
pub(crate) fn serve(request: &Request) -> Option<Response> {
    let (body, media_type) = file(request.path())?;
    if !matches!(request.method(), "GET" | "HEAD") {
        return Some(Response::text(405, "only GET and HEAD are served here\n").header("Allow", "GET, HEAD"));
    }
    Some(
        Response::new(200)
            .header("Content-Type", media_type)
            // Small, and changes with the binary: always revalidated.
            .header("Cache-Control", "no-cache")
            .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            .header("X-Content-Type-Options", "nosniff")
            .header("Referrer-Policy", "no-referrer")
            .body(Bytes::from_static(body.as_bytes())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response's head as the server writes it, lower-cased.
    fn head(response: &Response) -> String {
        let encoded = response.encode(false, true);
        let text = String::from_utf8_lossy(&encoded).to_lowercase();
        text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
    }

    #[test]
    fn the_root_is_the_page_and_its_files_follow() {
        let page = serve(&Request::new("GET", "/")).expect("served");
        assert_eq!(page.status(), 200);
        assert!(head(&page).contains("\r\ncontent-type: text/html; charset=utf-8\r\n"), "{}", head(&page));
        let html = std::str::from_utf8(page.body_bytes()).expect("utf-8");
        for file in ["/page/chat.js", "/page/chat.css"] {
            assert!(html.contains(file), "the page loads {file}");
            let served = serve(&Request::new("GET", file)).expect("served");
            assert_eq!(served.status(), 200, "{file}");
            assert!(!served.body_bytes().is_empty(), "{file}");
        }
        assert!(head(&page).contains("frame-ancestors 'none'"));
        assert!(head(&page).contains("\r\nx-content-type-options: nosniff"));
    }

    #[test]
    fn the_page_names_its_query_and_a_query_string_does_not_matter() {
        let page = serve(&Request::new("GET", "/?room=lobby")).expect("served");
        assert_eq!(page.status(), 200);
        assert!(SCRIPT.contains("history") && SCRIPT.contains("since") && SCRIPT.contains("wss:"));
    }

    #[test]
    fn other_methods_are_refused_and_other_paths_left_alone() {
        let post = serve(&Request::new("POST", "/")).expect("answered");
        assert_eq!(post.status(), 405);
        assert!(head(&post).contains("\r\nallow: get, head"));
        assert_eq!(serve(&Request::new("HEAD", "/page/chat.css")).map(|r| r.status()), Some(200));
        for other in ["/chat", "/page/", "/page/other.js", "/index.html", "/metrics"] {
            assert!(serve(&Request::new("GET", other)).is_none(), "{other}");
        }
    }

    #[test]
    fn user_text_is_never_parsed_as_html_by_the_script() {
        // The script builds every node with textContent; it never hands
        // strings to the HTML parser.
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!SCRIPT.contains(sink), "chat.js uses {sink}");
        }
    }
}
