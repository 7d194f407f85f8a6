//! The signing keys, made once at start-up with OpenSSL (the openssl crate): one RSA 2048 key
//! for both PKCS#1 v1.5 and PSS, one P-256 key, one P-384 key.
//!
//! Shared by every worker thread without a lock: OpenSSL 3 keys are safe to sign with from
//! many threads at once (the key is only read; RSA blinding state is per thread), and the
//! crate marks PKey and EcKey Send + Sync accordingly.

use bytes::Bytes;
use openssl::bn::BigNumRef;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};

use crate::pb::SignatureAlgorithm;

pub struct SigningKeys {
    rsa: PKey<Private>,
    p256: EcKey<Private>,
    p384: EcKey<Private>,
    rsa_spki: Bytes,
    p256_spki: Bytes,
    p384_spki: Bytes,
}

/// The algorithms Sign and GetPublicKey accept.
pub const SUPPORTED: &[SignatureAlgorithm] = &[
    SignatureAlgorithm::RsaPkcs1Sha256,
    SignatureAlgorithm::RsaPssSha256,
    SignatureAlgorithm::EcdsaP256Sha256,
    SignatureAlgorithm::EcdsaP384Sha384,
];

/// The wire value as a supported algorithm, or the INVALID_ARGUMENT message.
pub fn supported(value: i32) -> Result<SignatureAlgorithm, String> {
    match SignatureAlgorithm::from_i32(value) {
        Some(a) if SUPPORTED.contains(&a) => Ok(a),
        found => {
            let named = match found {
                Some(a) => a.as_str_name().to_owned(),
                None => format!("{value}"),
            };
            let list: Vec<&str> = SUPPORTED.iter().map(|a| a.as_str_name()).collect();
            Err(format!("unsupported signature algorithm {named}; supported: {}", list.join(", ")))
        }
    }
}

impl SigningKeys {
    pub fn generate() -> Result<SigningKeys, ErrorStack> {
        let rsa = PKey::from_rsa(Rsa::generate(2048)?)?;
        let p256_group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let p384_group = EcGroup::from_curve_name(Nid::SECP384R1)?;
        let p256 = EcKey::generate(&p256_group)?;
        let p384 = EcKey::generate(&p384_group)?;
        // public_key_to_der is the X.509 SubjectPublicKeyInfo (named curve for EC keys).
        let rsa_spki = Bytes::from(rsa.public_key_to_der()?);
        let p256_spki = Bytes::from(PKey::from_ec_key(p256.clone())?.public_key_to_der()?);
        let p384_spki = Bytes::from(PKey::from_ec_key(p384.clone())?.public_key_to_der()?);
        Ok(SigningKeys { rsa, p256, p384, rsa_spki, p256_spki, p384_spki })
    }

    /// The signature of `data`: RSA as PKCS#1 (v1.5 or PSS), ECDSA as IEEE P1363 r || s.
    pub fn sign(&self, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        match algorithm {
            SignatureAlgorithm::RsaPkcs1Sha256 => {
                let mut signer = Signer::new(MessageDigest::sha256(), &self.rsa)?;
                signer.set_rsa_padding(Padding::PKCS1)?;
                signer.sign_oneshot_to_vec(data)
            }
            SignatureAlgorithm::RsaPssSha256 => {
                let mut signer = Signer::new(MessageDigest::sha256(), &self.rsa)?;
                signer.set_rsa_padding(Padding::PKCS1_PSS)?;
                signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
                signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32))?;
                signer.sign_oneshot_to_vec(data)
            }
            // ECDSA over the digest directly: OpenSSL's ECDSA_do_sign gives r and s, which
            // is the P1363 form once each is padded to the curve's width; a Signer would
            // hand back DER that would then be parsed apart again.
            SignatureAlgorithm::EcdsaP256Sha256 => {
                p1363(&EcdsaSig::sign(&openssl::sha::sha256(data), &self.p256)?, 32)
            }
            SignatureAlgorithm::EcdsaP384Sha384 => {
                p1363(&EcdsaSig::sign(&openssl::sha::sha384(data), &self.p384)?, 48)
            }
            SignatureAlgorithm::Unspecified => unreachable!("callers check with supported()"),
        }
    }

    /// The SubjectPublicKeyInfo DER of the key `algorithm` signs with.
    pub fn public_key(&self, algorithm: SignatureAlgorithm) -> Bytes {
        match algorithm {
            SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPssSha256 => self.rsa_spki.clone(),
            SignatureAlgorithm::EcdsaP256Sha256 => self.p256_spki.clone(),
            SignatureAlgorithm::EcdsaP384Sha384 => self.p384_spki.clone(),
            SignatureAlgorithm::Unspecified => Bytes::new(),
        }
    }
}

/// r || s, each big-endian and left-padded with zeros to `width` bytes.
fn p1363(sig: &EcdsaSig, width: i32) -> Result<Vec<u8>, ErrorStack> {
    let mut out = padded(sig.r(), width)?;
    out.extend_from_slice(&padded(sig.s(), width)?);
    Ok(out)
}

fn padded(n: &BigNumRef, width: i32) -> Result<Vec<u8>, ErrorStack> {
    n.to_vec_padded(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::bn::BigNum;
    use openssl::sign::Verifier;

    fn verify_rsa(spki: &[u8], data: &[u8], sig: &[u8], pss: bool) -> bool {
        let key = PKey::public_key_from_der(spki).unwrap();
        assert_eq!(key.bits(), 2048);
        let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        if pss {
            v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            v.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
            // Demand exactly 32 bytes of salt, not "any".
            v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(32)).unwrap();
        } else {
            v.set_rsa_padding(Padding::PKCS1).unwrap();
        }
        v.verify_oneshot(sig, data).unwrap_or(false)
    }

    fn verify_ecdsa(spki: &[u8], digest: &[u8], sig: &[u8], width: usize) -> bool {
        assert_eq!(sig.len(), 2 * width, "P1363 is fixed width");
        let key = PKey::public_key_from_der(spki).unwrap().ec_key().unwrap();
        let r = BigNum::from_slice(&sig[..width]).unwrap();
        let s = BigNum::from_slice(&sig[width..]).unwrap();
        EcdsaSig::from_private_components(r, s).unwrap().verify(digest, &key).unwrap()
    }

    #[test]
    fn every_algorithm_signs_what_its_public_key_verifies() {
        let keys = SigningKeys::generate().unwrap();
        for data in [&b""[..], b"x", &[7u8; 100][..], &vec![1u8; 100_000][..]] {
            let s = keys.sign(SignatureAlgorithm::RsaPkcs1Sha256, data).unwrap();
            assert_eq!(s.len(), 256);
            assert!(verify_rsa(&keys.public_key(SignatureAlgorithm::RsaPkcs1Sha256), data, &s, false));
            assert!(!verify_rsa(&keys.public_key(SignatureAlgorithm::RsaPkcs1Sha256), data, &s, true));

            let s = keys.sign(SignatureAlgorithm::RsaPssSha256, data).unwrap();
            assert!(verify_rsa(&keys.public_key(SignatureAlgorithm::RsaPssSha256), data, &s, true));

            for _ in 0..20 {
                // Many signatures, so a short r or s (padding needed) shows up now and then.
                let s = keys.sign(SignatureAlgorithm::EcdsaP256Sha256, data).unwrap();
                let spki = keys.public_key(SignatureAlgorithm::EcdsaP256Sha256);
                assert!(verify_ecdsa(&spki, &openssl::sha::sha256(data), &s, 32));
            }
            let s = keys.sign(SignatureAlgorithm::EcdsaP384Sha384, data).unwrap();
            let spki = keys.public_key(SignatureAlgorithm::EcdsaP384Sha384);
            assert!(verify_ecdsa(&spki, &openssl::sha::sha384(data), &s, 48));
        }
    }

    #[test]
    fn public_keys_are_spki_of_the_right_kind() {
        let keys = SigningKeys::generate().unwrap();
        let p256 = PKey::public_key_from_der(&keys.public_key(SignatureAlgorithm::EcdsaP256Sha256)).unwrap();
        assert_eq!(p256.ec_key().unwrap().group().curve_name(), Some(Nid::X9_62_PRIME256V1));
        let p384 = PKey::public_key_from_der(&keys.public_key(SignatureAlgorithm::EcdsaP384Sha384)).unwrap();
        assert_eq!(p384.ec_key().unwrap().group().curve_name(), Some(Nid::SECP384R1));
        assert_eq!(
            keys.public_key(SignatureAlgorithm::RsaPkcs1Sha256),
            keys.public_key(SignatureAlgorithm::RsaPssSha256)
        );
    }

    #[test]
    fn padding_to_fixed_width() {
        let small = BigNum::from_u32(0x0102).unwrap();
        assert_eq!(padded(&small, 4).unwrap(), vec![0, 0, 1, 2]);
    }

    #[test]
    fn unspecified_and_unknown_algorithms_are_refused() {
        assert!(supported(0).unwrap_err().starts_with("unsupported signature algorithm SIGNATURE_ALGORITHM_UNSPECIFIED; supported: RSA_PKCS1_SHA256"));
        assert!(supported(99).unwrap_err().starts_with("unsupported signature algorithm 99"));
        assert_eq!(supported(3).unwrap(), SignatureAlgorithm::EcdsaP256Sha256);
    }
}
