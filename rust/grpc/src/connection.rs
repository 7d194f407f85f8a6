//! One HTTP/2 connection and the gRPC calls on it, on h2's server API.
//!
//! One task per connection drives h2 (reads and writes the socket, answers PINGs and
//! SETTINGS, sends keep-alive PINGs) and polls the connection's calls itself, as a
//! FuturesUnordered, rather than spawning a task per call. Spawned, every reply woke the
//! connection task, which Tokio runs next (its LIFO slot), so each reply went out in its own
//! writev (strace under h2load: about one writev per call). Polled here, the calls that h2
//! read in one go all answer before the connection writes, and their replies share a
//! writev. Only signing is spawned, and only when there are other workers to sign on.
//!
//! A call reads the request DATA through h2's `RecvStream`, releasing flow-control capacity
//! as it consumes it, and writes its reply through `SendStream` only as far as the peer's
//! windows allow (`reserve_capacity` / `poll_capacity`): a peer that stops reading stalls
//! its own calls, not the server's memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
// futures-util's poll_fn, not std's: that one arrived in Rust 1.64, after Debian 12's 1.63.
use futures_util::future::poll_fn;
use futures_util::stream::{FuturesUnordered, Stream};
use h2::server::SendResponse;
use h2::{Ping, RecvStream, SendStream};
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::framing::Decoder;
use crate::service::{route, Route, Service};
use crate::status::{self, Status, GRPC_ENCODING};

/// Concurrent calls one connection may carry (h2's default is unlimited, Kestrel's 100):
/// 10,000 calls fit on 10 connections, and a single client cannot open streams without bound.
pub const MAX_CONCURRENT_STREAMS: u32 = 1000;
/// Per-stream receive window: a 1 MiB message fits in one window, so it never waits on a
/// WINDOW_UPDATE round trip mid-message (the default, 64 KiB, would take 16 of them).
pub const STREAM_WINDOW: u32 = 1 << 20;
/// Connection receive window: 1,000 streams of 16 KiB, or 256 of 64 KiB, are in flight at
/// once without stalling each other, and it is still a fixed bound on what one connection
/// can make the server hold before it reads.
pub const CONNECTION_WINDOW: u32 = 16 << 20;
/// How much reply data one stream may queue inside h2 beyond what the peer's window allows
/// right now (h2 caps the capacity it grants by it): a whole 1 MiB reply at once.
pub const SEND_BUFFER: usize = 1 << 20;
/// gRPC request headers are a few hundred bytes; h2's default allows 16 MiB of them.
pub const MAX_HEADER_LIST: u32 = 64 << 10;
/// Keep-alive: PING after this long, and give up on the peer if no ACK arrives in the
/// timeout. A peer that vanished without FIN or RST is found, and its streams freed.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies to stream messages that arrived together go out as one DATA write, up to this.
const STREAM_BATCH: usize = 64 << 10;
/// Accept-and-run rounds in one poll of a connection before it yields to the others.
const ROUNDS_PER_POLL: usize = 16;

/// The HTTP/2 settings every connection is opened with (README.md, "HTTP/2 settings").
pub fn h2_settings() -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(SEND_BUFFER)
        .max_header_list_size(MAX_HEADER_LIST);
    builder
}

/// Serves one connection until the peer closes it, it fails, or shutdown drains it.
///
/// `shutdown` turning true sends GOAWAY (h2's graceful shutdown: the calls already open
/// finish, new ones are refused) and the connection closes once they are done.
pub async fn serve<T>(io: T, settings: Arc<h2::server::Builder>, service: Arc<Service>, mut shutdown: watch::Receiver<bool>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    if *shutdown.borrow() {
        return;
    }
    let handshake = settings.handshake::<T, Bytes>(io);
    let mut conn = tokio::select! {
        result = handshake => match result {
            Ok(conn) => conn,
            Err(_) => return, // not HTTP/2, or gone before the preface: nothing to answer
        },
        _ = shutdown.changed() => return,
    };
    let mut pings = conn.ping_pong();
    let mut awaiting_pong = false;
    let timer = tokio::time::sleep(KEEPALIVE_INTERVAL);
    tokio::pin!(timer);
    let mut shutting_down = false;
    let shutdown_signal = shutdown.changed();
    tokio::pin!(shutdown_signal);
    // The connection's calls, polled by this task (see the module comment).
    let mut calls = FuturesUnordered::new();

    // One hand-written poll rather than select!: every wake of this task (each read from
    // the socket) checks two cheap flags and the timer, then goes straight to h2.
    poll_fn(|cx| {
        if !shutting_down && shutdown_signal.as_mut().poll(cx).is_ready() {
            shutting_down = true;
            conn.graceful_shutdown();
        }
        if let Some(pings) = pings.as_mut() {
            if awaiting_pong {
                match pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        awaiting_pong = false;
                        timer.as_mut().reset(Instant::now() + KEEPALIVE_INTERVAL);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            }
            if timer.as_mut().poll(cx).is_ready() {
                if awaiting_pong {
                    return Poll::Ready(()); // no PING ACK in time: the peer is gone
                }
                if pings.send_ping(Ping::opaque()).is_ok() {
                    awaiting_pong = true;
                    timer.as_mut().reset(Instant::now() + KEEPALIVE_TIMEOUT);
                } else {
                    timer.as_mut().reset(Instant::now() + KEEPALIVE_INTERVAL);
                }
                let _ = timer.as_mut().poll(cx); // register the new deadline
                if awaiting_pong {
                    let _ = pings.poll_pong(cx); // and interest in the ACK
                }
            }
        }
        // Rounds of: take every new stream h2 has read; run every call that can go on; if
        // any call finished, go round again, so that h2 (in poll_accept) writes all the
        // replies queued in this round with one writev before the task sleeps.
        for _ in 0..ROUNDS_PER_POLL {
            let mut progressed = false;
            loop {
                match conn.poll_accept(cx) {
                    Poll::Ready(Some(Ok((request, respond)))) => {
                        if let Some((route, body, respond)) = accept_call(request, respond) {
                            let call = call(route, body, respond, service.clone());
                            if route == Route::Sign && service.spawn_signing {
                                tokio::spawn(call); // CPU-bound: other workers may sign in parallel
                            } else {
                                calls.push(call);
                            }
                        }
                        progressed = true;
                    }
                    // Peer closed, protocol error (h2 has already sent GOAWAY), or drained.
                    Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            while let Poll::Ready(Some(())) = Pin::new(&mut calls).poll_next(cx) {
                progressed = true;
            }
            if !progressed {
                return Poll::Pending;
            }
        }
        // Still busy after many rounds: let the other connections' tasks run, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

/// What ended a call early.
enum End {
    /// Answer with this status (Trailers-Only when no reply went out yet).
    Status(Status),
    /// The stream is gone (the peer reset it, or the connection died): nothing to send.
    Gone,
}

impl From<Status> for End {
    fn from(s: Status) -> End {
        End::Status(s)
    }
}

/// `application/grpc`, optionally followed by `+proto` (or another subtype) or `;params`.
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    value.len() >= GRPC.len()
        && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
        && matches!(value.get(GRPC.len()), None | Some(b'+') | Some(b';'))
}

/// A new stream: its head is checked here, before the call's future exists (which then
/// carries the body and the response handle, not the head: it stays small). A refusal goes
/// out at once; a call that goes ahead is handed back.
fn accept_call(request: Request<RecvStream>, mut respond: SendResponse<Bytes>) -> Option<(Route, RecvStream, SendResponse<Bytes>)> {
    let (head, body) = request.into_parts();
    match check(&head) {
        Ok(route) => Some((route, body, respond)),
        Err(response) => {
            if let Ok(sent) = respond.send_response(response, true) {
                if !body.is_end_stream() {
                    tokio::spawn(async move {
                        let mut body = body;
                        drain(&mut body, sent).await
                    });
                }
            }
            None
        }
    }
}

/// One gRPC call; then, if the answer went out before the request ended, read the rest of
/// it (see `drain`).
pub async fn call(route: Route, mut body: RecvStream, mut respond: SendResponse<Bytes>, service: Arc<Service>) {
    let sent = match route {
        Route::EchoStream => Box::pin(echo_stream(&mut body, &mut respond, &service)).await,
        route => unary(route, &mut body, &mut respond, &service).await,
    };
    if let Some(sent) = sent {
        if !body.is_end_stream() {
            // Boxed, as is the stream method: the rare paths' larger state (a timer here)
            // would otherwise enlarge every call's task, which spawn copies into place.
            Box::pin(drain(&mut body, sent)).await;
        }
    }
}

/// The method the request head names, or the response that refuses it.
fn check(head: &http::request::Parts) -> Result<Route, Response<()>> {
    // Not gRPC at all: plain HTTP answers, as PROTOCOL-HTTP2.md asks for.
    if head.method != Method::POST {
        return Err(http_error(StatusCode::METHOD_NOT_ALLOWED));
    }
    if !matches!(head.headers.get(CONTENT_TYPE), Some(v) if is_grpc_content_type(v.as_bytes())) {
        return Err(http_error(StatusCode::UNSUPPORTED_MEDIA_TYPE));
    }
    let route = match route(head.uri.path()) {
        Some(route) => route,
        None => {
            let message = format!("unknown method {}", head.uri.path());
            return Err(status::trailers_only(&Status::unimplemented(message)));
        }
    };
    if let Some(encoding) = head.headers.get(&GRPC_ENCODING) {
        if encoding.as_bytes() != b"identity" {
            let message = format!(
                "grpc-encoding {} is not supported; this server accepts identity only",
                String::from_utf8_lossy(encoding.as_bytes())
            );
            return Err(status::trailers_only(&Status::unimplemented(message)));
        }
    }
    Ok(route)
}

/// How much of a request body that goes on after its call was answered is read and thrown
/// away, and for how long, before the stream is reset.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// After an early answer (RESOURCE_EXHAUSTED at a message's prefix, UNIMPLEMENTED, ...) the
/// peer may still be sending its request. RFC 9113 section 8.1 has the server end that with
/// RST_STREAM(NO_ERROR) once the response is complete; h2 0.3.13 (Debian's) instead resets
/// with CANCEL when the handles are dropped, and an explicit reset would discard the queued
/// response. HttpClient (grpc-dotnet) reports a call whose request was CANCELled as
/// Cancelled, even with its status already in hand. So: read the rest of the body and throw
/// it away (releasing the window so the peer can finish) until END_STREAM, and only a
/// request that goes on past DRAIN_BYTES or DRAIN_TIME is reset, with NO_ERROR (long after
/// the response was written).
async fn drain(body: &mut RecvStream, mut sent: SendStream<Bytes>) {
    if body.is_end_stream() {
        return;
    }
    let deadline = Instant::now() + DRAIN_TIME;
    let mut left = DRAIN_BYTES;
    loop {
        match tokio::time::timeout_at(deadline, body.data()).await {
            Ok(Some(Ok(data))) => {
                let _ = body.flow_control().release_capacity(data.len());
                if data.len() > left {
                    break;
                }
                left -= data.len();
            }
            Ok(Some(Err(_))) | Ok(None) => return, // ended, or the peer reset it
            Err(_) => break,
        }
    }
    sent.send_reset(h2::Reason::NO_ERROR);
}

fn http_error(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response
}

async fn unary(route: Route, body: &mut RecvStream, respond: &mut SendResponse<Bytes>, service: &Service) -> Option<SendStream<Bytes>> {
    let result = match read_one(body, service.max_message).await {
        Ok(message) => service.unary(route, message, crate::unix_nanos()).map_err(End::Status),
        Err(end) => Err(end),
    };
    match result {
        Ok(reply) => {
            let mut send = respond.send_response(status::response_headers(), false).ok()?;
            if send_all(&mut send, reply).await.is_ok() {
                let _ = send.send_trailers(status::trailers(&Status::ok()));
            }
            Some(send)
        }
        Err(End::Status(s)) => respond.send_response(status::trailers_only(&s), true).ok(),
        Err(End::Gone) => None,
    }
}

/// The one request message of a unary call, once the client has half-closed.
async fn read_one(body: &mut RecvStream, max: usize) -> Result<Bytes, End> {
    let mut decoder = Decoder::new(max);
    let mut message = None;
    loop {
        // The last DATA frame usually carries END_STREAM: no need to poll for the end.
        if message.is_some() && body.is_end_stream() {
            break;
        }
        let data = match body.data().await {
            None => break,
            Some(Ok(data)) => data,
            Some(Err(_)) => return Err(End::Gone),
        };
        let n = data.len();
        decoder.push(data);
        // The bytes are ours now (at most one message, bounded by `max`): give the window back.
        let _ = body.flow_control().release_capacity(n);
        while let Some(m) = decoder.next_message().map_err(Status::from)? {
            if message.is_some() {
                return Err(Status::internal("more than one request message for a unary method").into());
            }
            message = Some(m);
        }
    }
    if decoder.in_message() {
        return Err(Status::internal("request ended inside a message").into());
    }
    message.ok_or_else(|| Status::internal("no request message for a unary method").into())
}

/// Echo/Stream: one reply per request message, in order, each as soon as it is decoded.
/// Messages that arrived together (already buffered by h2) are answered together in one
/// DATA write.
async fn echo_stream(body: &mut RecvStream, respond: &mut SendResponse<Bytes>, service: &Service) -> Option<SendStream<Bytes>> {
    // The response headers go out at once rather than with the first reply: a client may
    // wait for them before it sends (grpc-go's ClientStream.Header() does), and on a
    // long-lived stream the one extra HEADERS frame costs nothing per message.
    let mut send = respond.send_response(status::response_headers(), false).ok()?;
    let mut decoder = Decoder::new(service.max_message);
    let mut out = BytesMut::new();
    let mut data = body.data().await;
    let mut end = loop {
        let chunk = match data {
            None => break Status::ok(),
            Some(Ok(chunk)) => chunk,
            Some(Err(_)) => return None, // reset by the peer: nothing more to send
        };
        let n = chunk.len();
        decoder.push(chunk);
        let mut failed = None;
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    if let Err(s) = service.echo(message, crate::unix_nanos(), &mut out) {
                        failed = Some(s);
                        break;
                    }
                    if out.len() >= STREAM_BATCH && send_all(&mut send, out.split().freeze()).await.is_err() {
                        return None;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e.into());
                    break;
                }
            }
        }
        // Consumed: the replies are written (or queued within the batch bound).
        let _ = body.flow_control().release_capacity(n);
        if let Some(s) = failed {
            break s; // the replies before the bad message still go out, then the status
        }
        // More already here? Decode it before writing, so the replies share a write.
        data = match poll_fn(|cx| Poll::Ready(match body.poll_data(cx) {
            Poll::Ready(next) => Some(next),
            Poll::Pending => None,
        }))
        .await
        {
            Some(next) => next,
            None => {
                if !out.is_empty() && send_all(&mut send, out.split().freeze()).await.is_err() {
                    return None;
                }
                body.data().await
            }
        };
    };
    if end.code == status::Code::Ok && decoder.in_message() {
        end = Status::internal("request stream ended inside a message");
    }
    if !out.is_empty() && send_all(&mut send, out.split().freeze()).await.is_err() {
        return None;
    }
    let _ = send.send_trailers(status::trailers(&end));
    Some(send)
}

/// Sends `data` on the stream only as fast as the peer's flow-control windows (stream and
/// connection) open: asks h2 for capacity for all of it, sends what is granted, waits for
/// more. Ends with an error if the stream is reset or the connection closes.
pub async fn send_all(send: &mut SendStream<Bytes>, mut data: Bytes) -> Result<(), h2::Error> {
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let mut granted = send.capacity();
        while granted == 0 {
            granted = match poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(e),
                // The stream can no longer send (reset by the peer).
                None => return Err(h2::Error::from(h2::Reason::CANCEL)),
            };
        }
        let chunk = data.split_to(granted.min(data.len()));
        send.send_data(chunk, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types() {
        for ok in ["application/grpc", "application/grpc+proto", "application/grpc;charset=x", "Application/GRPC"] {
            assert!(is_grpc_content_type(ok.as_bytes()), "{ok}");
        }
        for bad in ["application/json", "application/grpcx", "application/grp", "", "text/plain"] {
            assert!(!is_grpc_content_type(bad.as_bytes()), "{bad}");
        }
    }
}

#[cfg(test)]
mod task_size {
    use super::*;

    fn size<F, Fut>(_: F) -> usize
    where
        F: Fn(Route, RecvStream, SendResponse<Bytes>, Arc<Service>) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every unary call's task is this future; spawn copies it into place. It was 1,536
    /// bytes with the request head and the drain's timer inside it (now 368 on rustc 1.95).
    #[test]
    fn a_call_task_stays_small() {
        let n = size(call);
        assert!(n <= 512, "the call future grew to {n} bytes");
    }
}
