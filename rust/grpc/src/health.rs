//! grpc.health.v1.Health/Check, by hand: the protocol's two messages are one field each, and
//! the proto (grpc/health/v1/health.proto) is not in the repository to generate them from.
//!
//! HealthCheckRequest { string service = 1; }
//! HealthCheckResponse { ServingStatus status = 1; }  (SERVING = 1)

/// HealthCheckResponse{status: SERVING}: field 1, wire type 0 (tag 0x08), varint 1.
pub const SERVING_RESPONSE: &[u8] = &[0x08, 0x01];

/// The services this server answers SERVING for; "" is the server as a whole.
pub const SERVICES: &[&str] = &["", "bench.Echo", "bench.Crypto", "grpc.health.v1.Health"];

/// The `service` field of a HealthCheckRequest (empty when absent); unknown fields are
/// skipped as protobuf requires.
pub fn decode_request(mut buf: &[u8]) -> Result<String, &'static str> {
    let mut service = String::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return Err("field number 0");
        }
        match wire_type {
            0 => {
                read_varint(&mut buf)?;
            }
            1 => skip(&mut buf, 8)?,
            2 => {
                let len = read_varint(&mut buf)?;
                if len > buf.len() as u64 {
                    return Err("length past the end of the message");
                }
                let (value, rest) = buf.split_at(len as usize);
                if field == 1 {
                    service = std::str::from_utf8(value).map_err(|_| "service is not UTF-8")?.to_owned();
                }
                buf = rest;
            }
            5 => skip(&mut buf, 4)?,
            _ => return Err("unsupported wire type"),
        }
    }
    Ok(service)
}

fn skip(buf: &mut &[u8], n: usize) -> Result<(), &'static str> {
    if buf.len() < n {
        return Err("truncated field");
    }
    *buf = &buf[n..];
    Ok(())
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, &'static str> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_request_is_the_whole_server() {
        assert_eq!(decode_request(&[]).unwrap(), "");
    }

    #[test]
    fn service_name_is_field_one() {
        let mut m = vec![0x0a, 10];
        m.extend_from_slice(b"bench.Echo");
        assert_eq!(decode_request(&m).unwrap(), "bench.Echo");
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // field 2 varint 300, field 3 fixed64, field 4 bytes, field 5 fixed32, then field 1.
        let mut m = vec![0x10, 0xac, 0x02, 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x22, 2, b'x', b'y', 0x2d, 1, 2, 3, 4];
        m.extend_from_slice(&[0x0a, 12]);
        m.extend_from_slice(b"bench.Crypto");
        assert_eq!(decode_request(&m).unwrap(), "bench.Crypto");
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert!(decode_request(&[0x0a, 5, b'a']).is_err()); // length past the end
        assert!(decode_request(&[0x0a]).is_err()); // truncated varint
        assert!(decode_request(&[0x0a, 2, 0xff, 0xfe]).is_err()); // not UTF-8
        assert!(decode_request(&[0x0b]).is_err()); // wire type 3 (groups)
        assert!(decode_request(&[0x00]).is_err()); // field 0
        assert!(decode_request(&[0x19, 1, 2]).is_err()); // truncated fixed64
    }

    #[test]
    fn serving_response_is_status_one() {
        assert_eq!(SERVING_RESPONSE, &[0x08, 0x01]);
    }
}
