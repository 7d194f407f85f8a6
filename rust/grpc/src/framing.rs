//! gRPC message framing (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"): a 1-byte compressed
//! flag, a 4-byte big-endian length, then the message. HTTP/2 DATA frames cut this stream
//! anywhere: a frame may hold many messages, or a piece of one, or a piece of a header.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::status::{Code, Status};

/// The compressed flag and the length.
pub const PREFIX_LEN: usize = 5;

/// Why a request stream cannot be read further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The prefix announces a message larger than the limit (checked before buffering it).
    TooLarge { len: usize, max: usize },
    /// The compressed flag is set, but the call negotiated no compression.
    Compressed,
    /// A flag byte other than 0 or 1.
    BadFlag(u8),
}

impl From<FrameError> for Status {
    fn from(e: FrameError) -> Status {
        match e {
            FrameError::TooLarge { len, max } => Status::new(
                Code::ResourceExhausted,
                format!("received message larger than max ({len} vs. {max})"),
            ),
            // The spec: a compressed message on a call without grpc-encoding is a protocol
            // error, reported as INTERNAL.
            FrameError::Compressed => Status::internal(
                "compressed flag set on a message, but the call has no grpc-encoding (this server accepts identity only)",
            ),
            FrameError::BadFlag(flag) => Status::internal(format!("invalid message flag byte {flag:#04x}")),
        }
    }
}

/// Splits the request body of one call back into messages.
///
/// DATA payloads go in with `push`; `next_message` hands out whole messages. A message that lies in
/// one payload is a slice of it (no copy); one that spans payloads is held as the pieces that
/// arrived and copied once, into a buffer of its exact size, when its last byte arrives. So
/// a prefix that announces a large message allocates nothing until the data is there.
pub struct Decoder {
    max: usize,
    /// The unread rest of the last payload pushed.
    current: Bytes,
    /// The prefix bytes seen so far, when a prefix is split across payloads.
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// The length of the message being read, once its prefix is complete.
    expect: Option<usize>,
    /// Pieces of that message from earlier payloads, and their total length.
    pieces: Vec<Bytes>,
    pieces_len: usize,
}

impl Decoder {
    pub fn new(max: usize) -> Decoder {
        Decoder {
            max,
            current: Bytes::new(),
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            expect: None,
            pieces: Vec::new(),
            pieces_len: 0,
        }
    }

    /// Adds the next DATA payload. Call `next_message` until it returns `Ok(None)` first.
    pub fn push(&mut self, data: Bytes) {
        debug_assert!(self.current.is_empty(), "push before the last payload was read");
        self.current = data;
    }

    /// True when part of a message (or of its prefix) is held: the body must not end here.
    pub fn in_message(&self) -> bool {
        self.prefix_len > 0 || self.expect.is_some()
    }

    /// The next whole message, `Ok(None)` when the payloads so far hold no further one.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, FrameError> {
        loop {
            match self.expect {
                None => {
                    let prefix = if self.prefix_len == 0 && self.current.len() >= PREFIX_LEN {
                        let mut p = [0u8; PREFIX_LEN];
                        p.copy_from_slice(&self.current[..PREFIX_LEN]);
                        self.current.advance(PREFIX_LEN);
                        p
                    } else {
                        let take = (PREFIX_LEN - self.prefix_len).min(self.current.len());
                        self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&self.current[..take]);
                        self.current.advance(take);
                        self.prefix_len += take;
                        if self.prefix_len < PREFIX_LEN {
                            return Ok(None);
                        }
                        self.prefix_len = 0;
                        self.prefix
                    };
                    match prefix[0] {
                        0 => {}
                        1 => return Err(FrameError::Compressed),
                        flag => return Err(FrameError::BadFlag(flag)),
                    }
                    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
                    if len > self.max {
                        return Err(FrameError::TooLarge { len, max: self.max });
                    }
                    self.expect = Some(len);
                }
                Some(len) => {
                    if self.pieces_len == 0 && self.current.len() >= len {
                        // The usual case for small messages: all of it in this payload.
                        self.expect = None;
                        return Ok(Some(self.current.split_to(len)));
                    }
                    let take = (len - self.pieces_len).min(self.current.len());
                    if take > 0 {
                        self.pieces.push(self.current.split_to(take));
                        self.pieces_len += take;
                    }
                    if self.pieces_len < len {
                        return Ok(None);
                    }
                    self.expect = None;
                    self.pieces_len = 0;
                    let message = if self.pieces.len() == 1 {
                        self.pieces.pop().unwrap_or_default()
                    } else {
                        let mut whole = BytesMut::with_capacity(len);
                        for piece in self.pieces.drain(..) {
                            whole.extend_from_slice(&piece);
                        }
                        whole.freeze()
                    };
                    return Ok(Some(message));
                }
            }
        }
    }
}

/// Why a reply cannot be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLargeToSend {
    pub len: usize,
    pub max: usize,
}

impl From<TooLargeToSend> for Status {
    fn from(e: TooLargeToSend) -> Status {
        Status::new(
            Code::ResourceExhausted,
            format!("response message larger than max ({} vs. {})", e.len, e.max),
        )
    }
}

/// Appends `message`, length-prefixed and uncompressed, to `out`.
pub fn encode_into<M: prost::Message>(message: &M, max: usize, out: &mut BytesMut) -> Result<(), TooLargeToSend> {
    let len = message.encoded_len();
    if len > max {
        return Err(TooLargeToSend { len, max });
    }
    out.reserve(PREFIX_LEN + len);
    out.put_u8(0);
    out.put_u32(len as u32);
    // Cannot fail: the buffer was just grown to fit.
    let _ = message.encode(out);
    Ok(())
}

/// `message` as one length-prefixed frame.
pub fn encode<M: prost::Message>(message: &M, max: usize) -> Result<Bytes, TooLargeToSend> {
    let mut out = BytesMut::new();
    encode_into(message, max, &mut out)?;
    Ok(out.freeze())
}

/// Already-encoded message bytes as one length-prefixed frame.
pub fn frame_raw(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(PREFIX_LEN + message.len());
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.extend_from_slice(message);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{EchoReply, EchoRequest};
    use prost::Message;

    fn framed(messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            out.extend_from_slice(&frame_raw(m));
        }
        out
    }

    /// Feeds `wire` cut at every position in `cuts` and collects the messages.
    fn decode_cut(wire: &[u8], cuts: &[usize], max: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut d = Decoder::new(max);
        let mut out = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&wire.len())) {
            d.push(Bytes::copy_from_slice(&wire[start..end]));
            while let Some(m) = d.next_message()? {
                out.push(m.to_vec());
            }
            start = end;
        }
        assert!(!d.in_message(), "a whole wire left a partial message");
        Ok(out)
    }

    #[test]
    fn prefix_is_flag_then_big_endian_length() {
        assert_eq!(&frame_raw(b"abc")[..], &[0, 0, 0, 0, 3, b'a', b'b', b'c']);
        let big = vec![7u8; 0x01_02_03];
        let f = frame_raw(&big);
        assert_eq!(&f[..5], &[0, 0, 0x01, 0x02, 0x03]);
        assert_eq!(f.len(), 5 + big.len());
    }

    #[test]
    fn one_payload_many_messages_including_empty_ones() {
        let wire = framed(&[b"one", b"", b"three", b""]);
        let got = decode_cut(&wire, &[], 100).unwrap();
        assert_eq!(got, vec![b"one".to_vec(), vec![], b"three".to_vec(), vec![]]);
    }

    #[test]
    fn every_cut_point_gives_the_same_messages() {
        let wire = framed(&[b"hello", b"", b"a longer message of some bytes", b"x"]);
        let want = vec![b"hello".to_vec(), vec![], b"a longer message of some bytes".to_vec(), b"x".to_vec()];
        for a in 0..=wire.len() {
            for b in a..=wire.len() {
                assert_eq!(decode_cut(&wire, &[a, b], 100).unwrap(), want, "cut at {a} and {b}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let wire = framed(&[&big, b"z"]);
        let cuts: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(decode_cut(&wire, &cuts, 1 << 20).unwrap(), vec![big, b"z".to_vec()]);
    }

    #[test]
    fn message_in_one_payload_is_not_copied() {
        let wire = Bytes::from(framed(&[b"zero-copy"]));
        let mut d = Decoder::new(100);
        d.push(wire.clone());
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(m.as_ptr(), wire[5..].as_ptr());
    }

    #[test]
    fn partial_message_is_reported() {
        let wire = framed(&[b"abcdef"]);
        for cut in 1..wire.len() {
            let mut d = Decoder::new(100);
            d.push(Bytes::copy_from_slice(&wire[..cut]));
            assert_eq!(d.next_message().unwrap(), None);
            assert!(d.in_message(), "cut {cut}");
        }
        let mut d = Decoder::new(100);
        assert!(!d.in_message());
        d.push(Bytes::new());
        assert_eq!(d.next_message().unwrap(), None);
        assert!(!d.in_message());
    }

    #[test]
    fn too_large_is_refused_at_the_prefix_before_any_body() {
        let max = 4 << 20;
        let mut d = Decoder::new(max);
        // Only the prefix of a 5 MiB message: refused without waiting for the body.
        d.push(Bytes::from_static(&[0, 0x00, 0x50, 0x00, 0x00]));
        assert_eq!(d.next_message(), Err(FrameError::TooLarge { len: 5 << 20, max }));
        // Exactly the limit is fine.
        let mut d = Decoder::new(max);
        d.push(Bytes::from(vec![0, 0x00, 0x40, 0x00, 0x00]));
        assert_eq!(d.next_message(), Ok(None));
        assert!(d.in_message());
        let status: Status = FrameError::TooLarge { len: 5 << 20, max }.into();
        assert_eq!(status.code, Code::ResourceExhausted);
    }

    #[test]
    fn compressed_and_bad_flags_are_refused() {
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(&[1, 0, 0, 0, 1, 9]));
        assert_eq!(d.next_message(), Err(FrameError::Compressed));
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(&[2, 0, 0, 0, 0]));
        assert_eq!(d.next_message(), Err(FrameError::BadFlag(2)));
        let status: Status = FrameError::Compressed.into();
        assert_eq!(status.code, Code::Internal);
    }

    #[test]
    fn encode_round_trips_through_the_decoder() {
        let reply = EchoReply { payload: Bytes::from(vec![42u8; 1000]), server_receive_unix_ns: 123 };
        let f = encode(&reply, 4 << 20).unwrap();
        assert_eq!(f[0], 0);
        assert_eq!(u32::from_be_bytes([f[1], f[2], f[3], f[4]]) as usize, f.len() - 5);
        let mut d = Decoder::new(4 << 20);
        d.push(f);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(EchoReply::decode(m).unwrap(), reply);
    }

    #[test]
    fn encode_refuses_a_message_over_the_limit() {
        let request = EchoRequest { payload: Bytes::from(vec![0u8; 100]), client_send_unix_ns: 0 };
        let len = request.encoded_len();
        assert_eq!(encode(&request, len - 1), Err(TooLargeToSend { len, max: len - 1 }));
        assert!(encode(&request, len).is_ok());
    }

    #[test]
    fn encode_into_appends() {
        let mut out = BytesMut::new();
        for i in 0..3u8 {
            encode_into(&EchoReply { payload: Bytes::from(vec![i; 3]), server_receive_unix_ns: 0 }, 100, &mut out).unwrap();
        }
        let mut d = Decoder::new(100);
        d.push(out.freeze());
        for i in 0..3u8 {
            assert_eq!(EchoReply::decode(d.next_message().unwrap().unwrap()).unwrap().payload, vec![i; 3]);
        }
        assert_eq!(d.next_message().unwrap(), None);
    }
}
