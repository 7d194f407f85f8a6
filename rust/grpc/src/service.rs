//! The methods: which path is which, and what each does with a request message. Nothing
//! here knows about HTTP/2; `connection` reads the messages and sends what these return.

use bytes::{Bytes, BytesMut};
use prost::Message;

use crate::crypto::{self, SigningKeys};
use crate::framing::{self, encode_into};
use crate::health;
use crate::pb::{EchoReply, EchoRequest, PublicKeyReply, PublicKeyRequest, SignReply, SignRequest};
use crate::status::{Code, Status};

/// The default and the contract's limit on one message, received or sent.
pub const DEFAULT_MAX_MESSAGE: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    EchoUnary,
    EchoStream,
    Sign,
    GetPublicKey,
    HealthCheck,
}

/// The method a request path names, if this server has it.
pub fn route(path: &str) -> Option<Route> {
    match path {
        "/bench.Echo/Unary" => Some(Route::EchoUnary),
        "/bench.Echo/Stream" => Some(Route::EchoStream),
        "/bench.Crypto/Sign" => Some(Route::Sign),
        "/bench.Crypto/GetPublicKey" => Some(Route::GetPublicKey),
        "/grpc.health.v1.Health/Check" => Some(Route::HealthCheck),
        _ => None,
    }
}

pub struct Service {
    pub keys: SigningKeys,
    pub max_message: usize,
    /// Run Sign calls as tasks of their own (more than one worker thread to run them on)
    /// instead of on their connection's task.
    pub spawn_signing: bool,
}

fn undecodable(what: &str, e: prost::DecodeError) -> Status {
    Status::internal(format!("cannot decode the {what} request: {e}"))
}

impl Service {
    /// The reply to one unary call, as a length-prefixed message. `received` is the wall
    /// clock (Unix ns) when the request message was complete.
    pub fn unary(&self, route: Route, message: Bytes, received: i64) -> Result<Bytes, Status> {
        let mut out = BytesMut::new();
        match route {
            Route::EchoUnary | Route::EchoStream => self.echo(message, received, &mut out)?,
            Route::Sign => {
                let request = SignRequest::decode(message).map_err(|e| undecodable("Sign", e))?;
                let algorithm = crypto::supported(request.algorithm).map_err(Status::invalid_argument)?;
                let signature = self
                    .keys
                    .sign(algorithm, &request.payload)
                    .map_err(|e| Status::internal(format!("signing failed: {e}")))?;
                let reply = SignReply {
                    algorithm: request.algorithm,
                    signature: Bytes::from(signature),
                    server_receive_unix_ns: received,
                };
                encode_into(&reply, self.max_message, &mut out)?;
            }
            Route::GetPublicKey => {
                let request = PublicKeyRequest::decode(message).map_err(|e| undecodable("GetPublicKey", e))?;
                let algorithm = crypto::supported(request.algorithm).map_err(Status::invalid_argument)?;
                let reply = PublicKeyReply {
                    algorithm: request.algorithm,
                    subject_public_key_info: self.keys.public_key(algorithm),
                };
                encode_into(&reply, self.max_message, &mut out)?;
            }
            Route::HealthCheck => {
                let service = health::decode_request(&message)
                    .map_err(|e| Status::internal(format!("cannot decode the HealthCheckRequest: {e}")))?;
                if !health::SERVICES.contains(&service.as_str()) {
                    return Err(Status::new(Code::NotFound, format!("unknown service {service}")));
                }
                return Ok(framing::frame_raw(health::SERVING_RESPONSE));
            }
        }
        Ok(out.freeze())
    }

    /// Appends the reply to one EchoRequest: the same payload (the same buffer, not a copy
    /// of it, until it is encoded), stamped with `received`.
    pub fn echo(&self, message: Bytes, received: i64, out: &mut BytesMut) -> Result<(), Status> {
        let request = EchoRequest::decode(message).map_err(|e| undecodable("Echo", e))?;
        let reply = EchoReply { payload: request.payload, server_receive_unix_ns: received };
        encode_into(&reply, self.max_message, out)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::Decoder;
    use crate::pb::SignatureAlgorithm;

    fn service() -> Service {
        Service { keys: SigningKeys::generate().unwrap(), max_message: DEFAULT_MAX_MESSAGE, spawn_signing: false }
    }

    fn unframe(frame: Bytes) -> Bytes {
        let mut d = Decoder::new(usize::MAX);
        d.push(frame);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!(d.next_message().unwrap(), None);
        m
    }

    #[test]
    fn routes() {
        assert_eq!(route("/bench.Echo/Unary"), Some(Route::EchoUnary));
        assert_eq!(route("/bench.Echo/Stream"), Some(Route::EchoStream));
        assert_eq!(route("/bench.Crypto/Sign"), Some(Route::Sign));
        assert_eq!(route("/bench.Crypto/GetPublicKey"), Some(Route::GetPublicKey));
        assert_eq!(route("/grpc.health.v1.Health/Check"), Some(Route::HealthCheck));
        assert_eq!(route("/grpc.health.v1.Health/Watch"), None);
        assert_eq!(route("/bench.Echo/unary"), None);
        assert_eq!(route("/"), None);
    }

    #[test]
    fn echo_returns_the_payload_and_the_stamp() {
        let s = service();
        let request = EchoRequest { payload: Bytes::from_static(b"hello"), client_send_unix_ns: 7 };
        let reply = s.unary(Route::EchoUnary, request.encode_to_vec().into(), 42).unwrap();
        let reply = EchoReply::decode(unframe(reply)).unwrap();
        assert_eq!(reply.payload, &b"hello"[..]);
        assert_eq!(reply.server_receive_unix_ns, 42);
    }

    #[test]
    fn echo_of_a_message_at_the_limit_is_too_large_to_send() {
        let s = Service { keys: SigningKeys::generate().unwrap(), max_message: 1000, spawn_signing: false };
        // A request of exactly 1000 bytes without a timestamp; the reply adds one.
        let request = EchoRequest { payload: Bytes::from(vec![1u8; 997]), client_send_unix_ns: 0 };
        assert_eq!(request.encoded_len(), 1000);
        let e = s.unary(Route::EchoUnary, request.encode_to_vec().into(), 1_700_000_000_000_000_000).unwrap_err();
        assert_eq!(e.code, Code::ResourceExhausted);
    }

    #[test]
    fn garbage_is_internal() {
        let e = service().unary(Route::EchoUnary, Bytes::from_static(&[0xff, 0xff]), 0).unwrap_err();
        assert_eq!(e.code, Code::Internal);
    }

    #[test]
    fn sign_echoes_the_algorithm_and_refuses_unspecified() {
        let s = service();
        let request = SignRequest { algorithm: SignatureAlgorithm::EcdsaP384Sha384 as i32, payload: Bytes::from_static(b"x") };
        let reply = SignReply::decode(unframe(s.unary(Route::Sign, request.encode_to_vec().into(), 5).unwrap())).unwrap();
        assert_eq!(reply.algorithm, SignatureAlgorithm::EcdsaP384Sha384 as i32);
        assert_eq!(reply.signature.len(), 96);
        assert_eq!(reply.server_receive_unix_ns, 5);
        for algorithm in [0, 17, -1] {
            let request = SignRequest { algorithm, payload: Bytes::new() };
            let e = s.unary(Route::Sign, request.encode_to_vec().into(), 0).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{algorithm}");
            let request = PublicKeyRequest { algorithm };
            let e = s.unary(Route::GetPublicKey, request.encode_to_vec().into(), 0).unwrap_err();
            assert_eq!(e.code, Code::InvalidArgument, "{algorithm}");
        }
    }

    #[test]
    fn health_answers_serving_for_known_services_only() {
        let s = service();
        let reply = s.unary(Route::HealthCheck, Bytes::new(), 0).unwrap();
        assert_eq!(&reply[..], &[0, 0, 0, 0, 2, 0x08, 0x01]);
        let mut m = vec![0x0a, 10];
        m.extend_from_slice(b"bench.Echo");
        assert!(s.unary(Route::HealthCheck, m.into(), 0).is_ok());
        let e = s.unary(Route::HealthCheck, Bytes::from_static(&[0x0a, 1, b'x']), 0).unwrap_err();
        assert_eq!(e.code, Code::NotFound);
    }
}
