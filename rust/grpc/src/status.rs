//! gRPC status codes, and the header blocks that carry them: the trailers of a call that sent
//! messages, or a Trailers-Only response (one HEADERS frame with END_STREAM) for a call that
//! ends before its first message.

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

/// The codes this server sends (grpc/doc/statuscodes.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
}

impl Code {
    /// The decimal form `grpc-status` carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ok => "0",
            Code::Cancelled => "1",
            Code::Unknown => "2",
            Code::InvalidArgument => "3",
            Code::NotFound => "5",
            Code::ResourceExhausted => "8",
            Code::Unimplemented => "12",
            Code::Internal => "13",
            Code::Unavailable => "14",
        }
    }
}

/// How a call ends: a code and a human message (empty for OK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn ok() -> Status {
        Status { code: Code::Ok, message: String::new() }
    }

    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status { code, message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::Internal, message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }

    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }
}

pub const CONTENT_TYPE_GRPC: &str = "application/grpc";
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
pub static GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
pub static GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// `grpc-status` and, unless empty, `grpc-message` (percent-encoded), added to `headers`.
pub fn put_status(headers: &mut HeaderMap, status: &Status) {
    headers.insert(GRPC_STATUS.clone(), HeaderValue::from_static(status.code.as_str()));
    if !status.message.is_empty() {
        // Percent-encoding leaves only visible ASCII, which is always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&percent_encode(&status.message)) {
            headers.insert(GRPC_MESSAGE.clone(), value);
        }
    }
}

/// The trailers that end a call after its response headers went out.
pub fn trailers(status: &Status) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(2);
    put_status(&mut headers, status);
    headers
}

/// The response headers of every call: `:status 200` is the response's, the rest these.
pub fn response_headers() -> http::Response<()> {
    let mut response = http::Response::new(());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_GRPC));
    response
}

/// A Trailers-Only response: status 200, content-type and the status in one header block,
/// sent with END_STREAM (the call had no message to send).
pub fn trailers_only(status: &Status) -> http::Response<()> {
    let mut response = response_headers();
    put_status(response.headers_mut(), status);
    if status.code == Code::Unimplemented && status.message.starts_with("grpc-encoding") {
        response.headers_mut().insert(GRPC_ACCEPT_ENCODING.clone(), HeaderValue::from_static("identity"));
    }
    response
}

/// The grpc-message encoding (PROTOCOL-HTTP2.md): the UTF-8 bytes, with every byte outside
/// visible ASCII 0x20-0x7E, and '%' itself, written as %XX.
pub fn percent_encode(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// The inverse of `percent_encode` (for tests and clients): a malformed escape is kept as is.
pub fn percent_decode(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_visible_ascii_and_escapes_the_rest() {
        assert_eq!(percent_encode("plain text: ok!"), "plain text: ok!");
        assert_eq!(percent_encode("100%"), "100%25");
        assert_eq!(percent_encode("a\nb\tc"), "a%0Ab%09c");
        assert_eq!(percent_encode("caf\u{e9}"), "caf%C3%A9");
        assert_eq!(percent_encode("\u{7f}"), "%7F");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn percent_decoding_inverts_encoding() {
        for s in ["", "100%", "a\nb", "caf\u{e9} \u{1F600}", "%%%", "~ \u{7f}"] {
            assert_eq!(percent_decode(&percent_encode(s)), s);
        }
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn trailers_carry_status_and_encoded_message() {
        let t = trailers(&Status::new(Code::ResourceExhausted, "too big: 5%"));
        assert_eq!(t.get("grpc-status").unwrap(), "8");
        assert_eq!(t.get("grpc-message").unwrap(), "too big: 5%25");
        let ok = trailers(&Status::ok());
        assert_eq!(ok.get("grpc-status").unwrap(), "0");
        assert!(ok.get("grpc-message").is_none());
    }

    #[test]
    fn trailers_only_is_one_block_with_content_type() {
        let r = trailers_only(&Status::unimplemented("unknown method /x"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().get("content-type").unwrap(), "application/grpc");
        assert_eq!(r.headers().get("grpc-status").unwrap(), "12");
        assert_eq!(r.headers().get("grpc-message").unwrap(), "unknown method /x");
    }
}
