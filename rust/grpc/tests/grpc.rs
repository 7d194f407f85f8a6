//! End to end: the real server binary on a real socket, driven by h2's own client, so the
//! hand-written gRPC layer is checked against an independent HTTP/2 implementation.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use http::{HeaderMap, Request};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};
use prost::Message;
use rust_h2_grpc::framing::{frame_raw, Decoder};
use rust_h2_grpc::pb::{EchoReply, EchoRequest, PublicKeyReply, PublicKeyRequest, SignReply, SignRequest, SignatureAlgorithm};
use rust_h2_grpc::status::percent_decode;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_rust-h2-server");

struct Server {
    child: Child,
    ready: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("READY "), "ready line: {line:?}");
        Server { child, ready: line.trim_end().to_owned() }
    }

    fn tcp() -> Server {
        Server::start(&["--port", "0"])
    }

    fn port(&self) -> u16 {
        self.ready.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits up to `limit` for the exit; the status and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, start.elapsed());
            }
            assert!(start.elapsed() < limit, "server still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(port: u16) -> SendRequest<Bytes> {
    connect_with(port, h2::client::Builder::new()).await
}

async fn connect_with(port: u16, builder: h2::client::Builder) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (send, conn) = builder.handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

fn grpc_request(path: &str) -> Request<()> {
    Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// What came back on one call.
#[derive(Debug)]
struct Outcome {
    headers: HeaderMap,
    messages: Vec<Bytes>,
    /// The status headers: the trailers, or the headers of a Trailers-Only response.
    status: HeaderMap,
    trailers_only: bool,
}

impl Outcome {
    fn code(&self) -> u32 {
        self.status.get("grpc-status").expect("grpc-status").to_str().unwrap().parse().unwrap()
    }

    fn message(&self) -> String {
        self.status.get("grpc-message").map(|v| percent_decode(v.to_str().unwrap())).unwrap_or_default()
    }
}

/// Reads a whole response, releasing flow-control capacity as the data is consumed.
async fn read_response(response: h2::client::ResponseFuture) -> Outcome {
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let (head, mut body) = response.into_parts();
    if body.is_end_stream() {
        return Outcome { status: head.headers.clone(), headers: head.headers, messages: vec![], trailers_only: true };
    }
    let mut decoder = Decoder::new(usize::MAX);
    let mut messages = Vec::new();
    while let Some(data) = body.data().await {
        let data = data.unwrap();
        let _ = body.flow_control().release_capacity(data.len());
        decoder.push(data);
        while let Some(m) = decoder.next_message().unwrap() {
            messages.push(m);
        }
    }
    assert!(!decoder.in_message());
    let status = body.trailers().await.unwrap().expect("trailers");
    Outcome { headers: head.headers, messages, status, trailers_only: false }
}

/// One call: the frames as separate DATA frames, END_STREAM after the last.
async fn call(client: &mut SendRequest<Bytes>, path: &str, frames: Vec<Bytes>) -> Outcome {
    let (response, mut stream) = client.clone().ready().await.unwrap().send_request(grpc_request(path), false).unwrap();
    let n = frames.len();
    for (i, f) in frames.into_iter().enumerate() {
        if !send_flow(&mut stream, f, i + 1 == n).await {
            break; // answered early
        }
    }
    if n == 0 {
        stream.send_data(Bytes::new(), true).unwrap();
    }
    let _ = client;
    read_response(response).await
}

/// Sends with the server's windows respected (the test client must not be the one that
/// cheats on flow control). False once the server has closed or reset the stream (it may
/// answer before the request is complete).
async fn send_flow(stream: &mut h2::SendStream<Bytes>, mut data: Bytes, end: bool) -> bool {
    if data.is_empty() {
        return stream.send_data(data, end).is_ok();
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let mut cap = stream.capacity();
        while cap == 0 {
            cap = match futures_poll_capacity(stream).await {
                Some(cap) => cap,
                None => return false,
            };
        }
        let chunk = data.split_to(cap.min(data.len()));
        if stream.send_data(chunk, end && data.is_empty()).is_err() {
            return false;
        }
    }
    true
}

async fn futures_poll_capacity(stream: &mut h2::SendStream<Bytes>) -> Option<usize> {
    struct Cap<'a>(&'a mut h2::SendStream<Bytes>);
    impl std::future::Future for Cap<'_> {
        type Output = Option<usize>;
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<usize>> {
            self.0.poll_capacity(cx).map(|c| c.and_then(|c| c.ok()))
        }
    }
    Cap(stream).await
}

fn echo_frame(payload: Bytes, ts: i64) -> Bytes {
    frame_raw(&EchoRequest { payload, client_send_unix_ns: ts }.encode_to_vec())
}

fn pattern(len: usize, seed: usize) -> Bytes {
    (0..len).map(|j| ((seed + j) % 251) as u8).collect::<Vec<u8>>().into()
}

#[tokio::test]
async fn unary_echoes_every_size_exactly() {
    let server = Server::tcp();
    assert!(server.ready.starts_with("READY tcp 127.0.0.1:"), "{}", server.ready);
    let mut client = connect(server.port()).await;
    for (i, size) in [0usize, 1, 100, 16_383, 16_384, 16_385, 65_536, 1 << 20].into_iter().enumerate() {
        let payload = pattern(size, i);
        let before = rust_h2_grpc::unix_nanos();
        let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(payload.clone(), before)]).await;
        assert_eq!(out.code(), 0, "size {size}: {}", out.message());
        assert!(!out.trailers_only);
        assert_eq!(out.headers.get("content-type").unwrap(), "application/grpc");
        assert_eq!(out.messages.len(), 1);
        let reply = EchoReply::decode(out.messages[0].clone()).unwrap();
        assert_eq!(reply.payload, payload, "size {size}");
        assert!(reply.server_receive_unix_ns >= before && reply.server_receive_unix_ns <= rust_h2_grpc::unix_nanos());
    }
}

#[tokio::test]
async fn a_message_cut_into_one_byte_data_frames_is_reassembled() {
    let server = Server::tcp();
    let mut client = connect(server.port()).await;
    let frame = echo_frame(pattern(300, 9), 0);
    let pieces: Vec<Bytes> = (0..frame.len()).map(|i| frame.slice(i..i + 1)).collect();
    let out = call(&mut client, "/bench.Echo/Unary", pieces).await;
    assert_eq!(out.code(), 0);
    assert_eq!(EchoReply::decode(out.messages[0].clone()).unwrap().payload, pattern(300, 9));
}

#[tokio::test]
async fn the_limit_is_four_mib_each_way() {
    let server = Server::tcp();
    let mut client = connect(server.port()).await;
    // A request of exactly 4 MiB (with its timestamp) is echoed; its reply is as large.
    let ts = rust_h2_grpc::unix_nanos();
    let mut payload_len = 4 << 20;
    while (EchoRequest { payload: vec![0u8; payload_len].into(), client_send_unix_ns: ts }).encoded_len() > 4 << 20 {
        payload_len -= 1;
    }
    let request = EchoRequest { payload: pattern(payload_len, 3), client_send_unix_ns: ts };
    assert_eq!(request.encoded_len(), 4 << 20);
    let out = call(&mut client, "/bench.Echo/Unary", vec![frame_raw(&request.encode_to_vec())]).await;
    assert_eq!(out.code(), 0, "{}", out.message());
    assert_eq!(EchoReply::decode(out.messages[0].clone()).unwrap().payload, request.payload);

    // 5 MiB: RESOURCE_EXHAUSTED, as a Trailers-Only response.
    let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(pattern(5 << 20, 1), 0)]).await;
    assert_eq!(out.code(), 8);
    assert!(out.trailers_only);
    assert!(out.message().contains("larger than max"), "{}", out.message());
}

#[tokio::test]
async fn too_large_is_answered_at_the_prefix_without_the_body() {
    let server = Server::tcp();
    let client = connect(server.port()).await;
    let (response, mut stream) = client.clone().ready().await.unwrap().send_request(grpc_request("/bench.Echo/Unary"), false).unwrap();
    // Only the prefix of a 5 MiB message, and no END_STREAM: the answer must not wait.
    stream.send_data(Bytes::from_static(&[0, 0, 0x50, 0, 0]), false).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(5), read_response(response)).await.expect("answered");
    assert_eq!((out.code(), out.trailers_only), (8, true));
    // The rest of the request is read and dropped, so the client can finish sending it
    // (no RST_STREAM(CANCEL), which HttpClient reports as a cancelled call).
    assert!(send_flow(&mut stream, Bytes::from(vec![0u8; 5 << 20]), true).await, "the server took the rest of the body");
    let mut client = client;
    let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(pattern(10, 1), 0)]).await;
    assert_eq!(out.code(), 0);
}

#[tokio::test]
async fn a_body_that_goes_on_long_after_the_answer_is_reset_with_no_error() {
    let server = Server::tcp();
    let client = connect(server.port()).await;
    let (response, mut stream) = client.clone().ready().await.unwrap().send_request(grpc_request("/bench.Nope/X"), false).unwrap();
    stream.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), false).unwrap();
    let out = read_response(response).await;
    assert_eq!(out.code(), 12);
    // Past the drain limit (64 MiB) the server resets the stream, with NO_ERROR.
    let chunk = Bytes::from(vec![0u8; 1 << 20]);
    let mut sent = 0;
    while send_flow(&mut stream, chunk.clone(), false).await {
        sent += 1;
        assert!(sent < 200, "never reset");
    }
    let reason = tokio::time::timeout(Duration::from_secs(5), futures_poll_reset(&mut stream)).await.expect("reset");
    assert_eq!(reason, h2::Reason::NO_ERROR);
    assert!(sent >= 63, "reset after {sent} MiB");
}

async fn futures_poll_reset(stream: &mut h2::SendStream<Bytes>) -> h2::Reason {
    struct R<'a>(&'a mut h2::SendStream<Bytes>);
    impl std::future::Future for R<'_> {
        type Output = h2::Reason;
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<h2::Reason> {
            self.0.poll_reset(cx).map(|r| r.unwrap())
        }
    }
    R(stream).await
}

#[tokio::test]
async fn max_message_bytes_is_configurable() {
    let server = Server::start(&["--max-message-bytes", "1000"]);
    let mut client = connect(server.port()).await;
    // 980 bytes of payload: a 983-byte request, a 993-byte reply (it adds the timestamp).
    let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(pattern(980, 0), 0)]).await;
    assert_eq!(out.code(), 0, "{}", out.message());
    let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(pattern(1000, 0), 0)]).await;
    assert_eq!(out.code(), 8);
}

#[tokio::test]
async fn protocol_errors_end_the_call_with_a_status() {
    let server = Server::tcp();
    let mut client = connect(server.port()).await;
    let hello = echo_frame(Bytes::from_static(b"hello"), 0);

    let out = call(&mut client, "/bench.Nope/Method", vec![hello.clone()]).await;
    assert_eq!((out.code(), out.trailers_only), (12, true));
    assert_eq!(out.message(), "unknown method /bench.Nope/Method");
    assert_eq!(out.status.get("content-type").unwrap(), "application/grpc");

    let mut compressed = hello.to_vec();
    compressed[0] = 1;
    let out = call(&mut client, "/bench.Echo/Unary", vec![compressed.into()]).await;
    assert_eq!(out.code(), 13);
    assert!(out.message().contains("compressed"), "{}", out.message());

    let out = call(&mut client, "/bench.Echo/Unary", vec![hello.clone(), hello.clone()]).await;
    assert_eq!(out.code(), 13);
    let out = call(&mut client, "/bench.Echo/Unary", vec![]).await;
    assert_eq!(out.code(), 13);
    let out = call(&mut client, "/bench.Echo/Unary", vec![hello.slice(..hello.len() - 1)]).await;
    assert_eq!(out.code(), 13);
    assert_eq!(out.message(), "request ended inside a message");
    let out = call(&mut client, "/bench.Echo/Unary", vec![frame_raw(&[0xff, 0xff, 0xff])]).await;
    assert_eq!(out.code(), 13);

    // grpc-encoding the server does not speak.
    let mut request = grpc_request("/bench.Echo/Unary");
    request.headers_mut().insert("grpc-encoding", "gzip".parse().unwrap());
    let (response, mut stream) = client.clone().ready().await.unwrap().send_request(request, false).unwrap();
    stream.send_data(hello.clone(), true).unwrap();
    let out = read_response(response).await;
    assert_eq!(out.code(), 12);
    assert_eq!(out.status.get("grpc-accept-encoding").unwrap(), "identity");

    // Not gRPC: plain HTTP errors.
    let get = Request::builder().method("GET").uri("http://127.0.0.1/bench.Echo/Unary").body(()).unwrap();
    let (response, _) = client.clone().ready().await.unwrap().send_request(get, true).unwrap();
    assert_eq!(response.await.unwrap().status(), 405);
    let json = Request::builder()
        .method("POST")
        .uri("http://127.0.0.1/bench.Echo/Unary")
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, _) = client.clone().ready().await.unwrap().send_request(json, true).unwrap();
    assert_eq!(response.await.unwrap().status(), 415);

    // The connection survived all of it.
    let out = call(&mut client, "/bench.Echo/Unary", vec![hello]).await;
    assert_eq!(out.code(), 0);
}

#[tokio::test]
async fn stream_answers_each_message_in_order_with_many_in_flight() {
    let server = Server::tcp();
    let client = connect(server.port()).await;
    let (response, mut stream) = client.ready().await.unwrap().send_request(grpc_request("/bench.Echo/Stream"), false).unwrap();
    const N: usize = 2000;
    // All the requests go out before any reply is read: 2,000 calls in flight on one stream.
    let writer = tokio::spawn(async move {
        for k in 0..N {
            assert!(send_flow(&mut stream, echo_frame(pattern(k % 300, k), 0), false).await);
        }
        stream.send_data(Bytes::new(), true).unwrap();
        stream
    });
    let out = read_response(response).await;
    let _ = writer.await.unwrap();
    assert_eq!(out.code(), 0);
    assert_eq!(out.messages.len(), N);
    for (k, m) in out.messages.iter().enumerate() {
        assert_eq!(EchoReply::decode(m.clone()).unwrap().payload, pattern(k % 300, k), "reply {k}");
    }
}

#[tokio::test]
async fn stream_ping_pong_gets_each_reply_before_the_next_request() {
    let server = Server::tcp();
    let client = connect(server.port()).await;
    let (response, mut stream) = client.ready().await.unwrap().send_request(grpc_request("/bench.Echo/Stream"), false).unwrap();
    let mut body = response.await.unwrap().into_body();
    let mut decoder = Decoder::new(usize::MAX);
    for (k, size) in [1usize, 100, 65_536, 1 << 20, 0, 7].into_iter().enumerate() {
        assert!(send_flow(&mut stream, echo_frame(pattern(size, k), 0), false).await);
        let reply = loop {
            if let Some(m) = decoder.next_message().unwrap() {
                break m;
            }
            let data = tokio::time::timeout(Duration::from_secs(10), body.data()).await.expect("reply in time").unwrap().unwrap();
            let _ = body.flow_control().release_capacity(data.len());
            decoder.push(data);
        };
        assert_eq!(EchoReply::decode(reply).unwrap().payload, pattern(size, k));
    }
    stream.send_data(Bytes::new(), true).unwrap();
    assert!(body.data().await.is_none());
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers.get("grpc-status").unwrap(), "0");
}

#[tokio::test]
async fn stream_error_after_replies_goes_in_the_trailers() {
    let server = Server::tcp();
    let mut client = connect(server.port()).await;
    let ok = echo_frame(Bytes::from_static(b"ok"), 0);
    let out = call(&mut client, "/bench.Echo/Stream", vec![ok.clone(), ok, Bytes::from_static(&[0, 0, 0x50, 0, 0])]).await;
    assert_eq!(out.messages.len(), 2);
    assert!(!out.trailers_only);
    assert_eq!(out.code(), 8);
    // And an empty stream is OK with no messages (headers, then trailers).
    let out = call(&mut client, "/bench.Echo/Stream", vec![]).await;
    assert_eq!((out.code(), out.trailers_only, out.messages.len()), (0, false, 0));
}

#[tokio::test]
async fn a_small_client_window_slows_replies_but_loses_nothing() {
    let server = Server::tcp();
    let mut builder = h2::client::Builder::new();
    builder.initial_window_size(1000).initial_connection_window_size(3000);
    let mut client = connect_with(server.port(), builder).await;
    // 1 MiB replies through a 1,000-byte stream window: the server must wait on WINDOW_UPDATEs.
    let mut calls = Vec::new();
    for k in 0..4 {
        let mut c = client.clone();
        calls.push(tokio::spawn(async move {
            let out = call(&mut c, "/bench.Echo/Unary", vec![echo_frame(pattern(1 << 20, k), 0)]).await;
            assert_eq!(out.code(), 0);
            assert_eq!(EchoReply::decode(out.messages[0].clone()).unwrap().payload, pattern(1 << 20, k));
        }));
    }
    for c in calls {
        tokio::time::timeout(Duration::from_secs(60), c).await.expect("in time").unwrap();
    }
    let out = call(&mut client, "/bench.Echo/Stream", vec![echo_frame(pattern(100_000, 1), 0); 5]).await;
    assert_eq!(out.messages.len(), 5);
}

#[tokio::test]
async fn many_concurrent_calls_on_one_connection() {
    let server = Server::tcp();
    let client = connect(server.port()).await;
    let mut calls = Vec::new();
    for k in 0..900 {
        let mut c = client.clone();
        calls.push(tokio::spawn(async move {
            let out = call(&mut c, "/bench.Echo/Unary", vec![echo_frame(pattern(k % 1000, k), 0)]).await;
            assert_eq!(out.code(), 0);
            assert_eq!(EchoReply::decode(out.messages[0].clone()).unwrap().payload, pattern(k % 1000, k));
        }));
    }
    for c in calls {
        c.await.unwrap();
    }
}

#[tokio::test]
async fn a_reset_stream_leaves_the_connection_working() {
    let server = Server::tcp();
    let mut client = connect(server.port()).await;
    let (_response, mut stream) = client.clone().ready().await.unwrap().send_request(grpc_request("/bench.Echo/Stream"), false).unwrap();
    stream.send_data(echo_frame(pattern(10, 0), 0), false).unwrap();
    // Half a message of a unary call, then a reset.
    let (_r2, mut s2) = client.clone().ready().await.unwrap().send_request(grpc_request("/bench.Echo/Unary"), false).unwrap();
    s2.send_data(echo_frame(pattern(100, 0), 0).slice(..50), false).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.send_reset(h2::Reason::CANCEL);
    s2.send_reset(h2::Reason::CANCEL);
    let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(pattern(10, 1), 0)]).await;
    assert_eq!(out.code(), 0);
}

#[tokio::test]
async fn health_is_serving_for_the_server_and_its_services() {
    let server = Server::tcp();
    let mut client = connect(server.port()).await;
    for service in ["", "bench.Echo", "bench.Crypto", "grpc.health.v1.Health"] {
        let mut request = vec![];
        if !service.is_empty() {
            request.push(0x0a);
            request.push(service.len() as u8);
            request.extend_from_slice(service.as_bytes());
        }
        let out = call(&mut client, "/grpc.health.v1.Health/Check", vec![frame_raw(&request)]).await;
        assert_eq!(out.code(), 0, "{service}");
        assert_eq!(&out.messages[0][..], &[0x08, 0x01], "{service}");
    }
    let out = call(&mut client, "/grpc.health.v1.Health/Check", vec![frame_raw(b"\x0a\x04nope")]).await;
    assert_eq!(out.code(), 5);
    let out = call(&mut client, "/grpc.health.v1.Health/Watch", vec![frame_raw(b"")]).await;
    assert_eq!(out.code(), 12);
}

#[tokio::test]
async fn signatures_verify_with_the_served_public_keys() {
    let server = Server::tcp();
    let mut client = connect(server.port()).await;
    let data = pattern(100, 5);
    for algorithm in [
        SignatureAlgorithm::RsaPkcs1Sha256,
        SignatureAlgorithm::RsaPssSha256,
        SignatureAlgorithm::EcdsaP256Sha256,
        SignatureAlgorithm::EcdsaP384Sha384,
    ] {
        let a = algorithm as i32;
        let out = call(&mut client, "/bench.Crypto/GetPublicKey", vec![frame_raw(&PublicKeyRequest { algorithm: a }.encode_to_vec())]).await;
        assert_eq!(out.code(), 0);
        let key = PublicKeyReply::decode(out.messages[0].clone()).unwrap();
        assert_eq!(key.algorithm, a);
        let key = PKey::public_key_from_der(&key.subject_public_key_info).unwrap();
        let request = SignRequest { algorithm: a, payload: data.clone() };
        let out = call(&mut client, "/bench.Crypto/Sign", vec![frame_raw(&request.encode_to_vec())]).await;
        assert_eq!(out.code(), 0);
        let reply = SignReply::decode(out.messages[0].clone()).unwrap();
        assert_eq!(reply.algorithm, a);
        assert!(reply.server_receive_unix_ns > 0);
        let sig = reply.signature;
        let ok = match algorithm {
            SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPssSha256 => {
                let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
                if algorithm == SignatureAlgorithm::RsaPssSha256 {
                    v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                    v.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
                    v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
                } else {
                    v.set_rsa_padding(Padding::PKCS1).unwrap();
                }
                v.verify_oneshot(&sig, &data).unwrap()
            }
            _ => {
                let (width, digest) = if algorithm == SignatureAlgorithm::EcdsaP256Sha256 {
                    (32, openssl::sha::sha256(&data).to_vec())
                } else {
                    (48, openssl::sha::sha384(&data).to_vec())
                };
                assert_eq!(sig.len(), 2 * width);
                let s = EcdsaSig::from_private_components(
                    BigNum::from_slice(&sig[..width]).unwrap(),
                    BigNum::from_slice(&sig[width..]).unwrap(),
                )
                .unwrap();
                s.verify(&digest, &key.ec_key().unwrap()).unwrap()
            }
        };
        assert!(ok, "{algorithm:?}");
    }
    for a in [0, 9] {
        let out = call(&mut client, "/bench.Crypto/Sign", vec![frame_raw(&SignRequest { algorithm: a, payload: data.clone() }.encode_to_vec())]).await;
        assert_eq!(out.code(), 3);
        let out = call(&mut client, "/bench.Crypto/GetPublicKey", vec![frame_raw(&PublicKeyRequest { algorithm: a }.encode_to_vec())]).await;
        assert_eq!(out.code(), 3);
    }
}

#[tokio::test]
async fn garbage_instead_of_http2_does_not_hurt_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::tcp();
    let mut raw = TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut sink)).await.expect("closed");
    let mut client = connect(server.port()).await;
    let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(pattern(10, 1), 0)]).await;
    assert_eq!(out.code(), 0);
}

#[tokio::test]
async fn sigterm_with_calls_open_exits_zero_within_a_second() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::tcp();
        let client = connect(server.port()).await;
        // Streams left open mid-call: the drain cannot wait for them.
        let mut open = Vec::new();
        for _ in 0..10 {
            let (r, mut s) = client.clone().ready().await.unwrap().send_request(grpc_request("/bench.Echo/Stream"), false).unwrap();
            s.send_data(echo_frame(pattern(10, 0), 0), false).unwrap();
            open.push((r, s));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.signal(sig);
        let (status, took) = server.wait_exit(Duration::from_secs(3));
        assert_eq!(status.code(), Some(0), "signal {sig}");
        assert!(took < Duration::from_secs(1), "signal {sig}: exit took {took:?}");
    }
}

#[test]
fn bad_arguments_exit_two_and_bind_errors_exit_one() {
    for args in [&["--port", "x"][..], &["--bogus"], &["--port"], &["--unix", "/tmp/x", "--port", "1"]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("rust-h2-server: ") && err.lines().count() == 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN).args(["--port", &port]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot listen on 127.0.0.1:"));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("usage: rust-h2-server"));
}

#[tokio::test]
async fn unix_socket_serves_and_cleans_up() {
    let dir = std::env::temp_dir().join(format!("rust-h2-grpc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    // A stale socket file (nobody listening) is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut server = Server::start(&["--unix", path.to_str().unwrap()]);
    assert_eq!(server.ready, format!("READY unix {}", path.display()));
    let io = tokio::net::UnixStream::connect(&path).await.unwrap();
    let (send, conn) = h2::client::handshake(io).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = send;
    let out = call(&mut client, "/bench.Echo/Unary", vec![echo_frame(pattern(1000, 2), 0)]).await;
    assert_eq!(out.code(), 0);
    // A second server on a live socket fails to bind and leaves it alone.
    let out2 = Command::new(BIN).args(["--unix", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(out2.status.code(), Some(1));
    assert!(path.exists());
    server.signal(libc::SIGTERM);
    let (status, _) = server.wait_exit(Duration::from_secs(3));
    assert_eq!(status.code(), Some(0));
    assert!(!path.exists(), "socket file removed at shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}
