//! Chat relay on tokio + tokio-tungstenite, written the way a Rust user writes it first: one
//! task per connection, every message published on a `tokio::sync::broadcast` channel, every
//! connection task forwarding what it receives from the channel to its socket.
//!
//! Same semantics as fanout's chat app: a welcome text on connect, then every message goes to
//! every *other* client, text as text and binary as binary. Only `/chat` is served (404 else).
//!
//! A connection that falls more than `CHANNEL_CAPACITY` messages behind the channel misses the
//! oldest ones (`RecvError::Lagged`): that is this design's slow-consumer policy, and the load
//! test counts those messages as lost.
//!
//! Usage: `tokio-tungstenite-chat [ADDR]` (default `127.0.0.1:9501`). The runtime has one
//! worker thread per CPU the process may run on (`taskset -c 0`: one).

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;

/// Messages the channel keeps for connections that are behind.
const CHANNEL_CAPACITY: usize = 1024;

/// One relayed message and the connection it came from (which must not get it back).
#[derive(Clone)]
struct Relayed {
    from: u64,
    message: Message,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9501".into());
    let listener = TcpListener::bind(&addr).await?;
    let (tx, _) = broadcast::channel::<Relayed>(CHANNEL_CAPACITY);
    println!("tokio-tungstenite listening on ws://{addr}/chat");
    let mut next_id = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                next_id += 1;
                tokio::spawn(serve(stream, next_id, tx.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning on the pending connection.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Upgrades one connection, then relays until it closes.
// The handshake callback's error type is tungstenite's (an HTTP response), not ours to shrink.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, id: u64, tx: broadcast::Sender<Relayed>) {
    let _ = stream.set_nodelay(true);
    let only_chat = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == "/chat" {
            Ok(resp)
        } else {
            let mut not_found = ErrorResponse::new(Some("not found".into()));
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            Err(not_found)
        }
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, only_chat).await else { return };
    let (mut sink, mut source) = ws.split();
    let mut rx = tx.subscribe();
    let welcome = format!(r#"{{"type":"welcome","id":{id}}}"#);
    if sink.send(Message::text(welcome)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    // Err only when no connection is subscribed, which cannot be while we are.
                    let _ = tx.send(Relayed { from: id, message });
                }
                // Ping, pong, close: tungstenite answers pings and closes by itself; after a
                // close handshake the stream ends and we drop the socket (server closes first).
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            relayed = rx.recv() => match relayed {
                Ok(r) if r.from != id => {
                    if sink.send(r.message).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {} // missed messages: counted as lost by the client
                Err(RecvError::Closed) => break,
            },
        }
    }
}
