package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"time"

	"bench/benchpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// cryptoService signs with keys made at start-up. Go's private keys are safe for concurrent use
// (rsa.GenerateKey precomputes the CRT values; signing only reads the key), so every call shares
// one key per algorithm.
type cryptoService struct {
	benchpb.UnimplementedCryptoServer
	rsa  *rsa.PrivateKey // both RSA paddings
	p256 *ecdsa.PrivateKey
	p384 *ecdsa.PrivateKey
	spki map[benchpb.SignatureAlgorithm][]byte // X.509 SubjectPublicKeyInfo, DER, per algorithm
}

var pss = &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256} // MGF1 uses the same hash

func newCryptoService() (*cryptoService, error) {
	s := &cryptoService{spki: map[benchpb.SignatureAlgorithm][]byte{}}
	var err error
	if s.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, fmt.Errorf("RSA 2048 key: %w", err)
	}
	if s.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, fmt.Errorf("P-256 key: %w", err)
	}
	if s.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, fmt.Errorf("P-384 key: %w", err)
	}
	for algorithm, public := range map[benchpb.SignatureAlgorithm]interface{}{
		benchpb.SignatureAlgorithm_RSA_PKCS1_SHA256:  &s.rsa.PublicKey,
		benchpb.SignatureAlgorithm_RSA_PSS_SHA256:    &s.rsa.PublicKey,
		benchpb.SignatureAlgorithm_ECDSA_P256_SHA256: &s.p256.PublicKey,
		benchpb.SignatureAlgorithm_ECDSA_P384_SHA384: &s.p384.PublicKey,
	} {
		der, err := x509.MarshalPKIXPublicKey(public)
		if err != nil {
			return nil, fmt.Errorf("public key of %v: %w", algorithm, err)
		}
		s.spki[algorithm] = der
	}
	return s, nil
}

func (s *cryptoService) Sign(_ context.Context, req *benchpb.SignRequest) (*benchpb.SignReply, error) {
	received := time.Now().UnixNano()
	signature, err := s.sign(req.Algorithm, req.Payload)
	if err != nil {
		return nil, err
	}
	return &benchpb.SignReply{Algorithm: req.Algorithm, Signature: signature, ServerReceiveUnixNs: received}, nil
}

func (s *cryptoService) sign(algorithm benchpb.SignatureAlgorithm, payload []byte) ([]byte, error) {
	var (
		signature []byte
		err       error
	)
	switch algorithm {
	case benchpb.SignatureAlgorithm_RSA_PKCS1_SHA256:
		digest := sha256.Sum256(payload)
		signature, err = rsa.SignPKCS1v15(rand.Reader, s.rsa, crypto.SHA256, digest[:])
	case benchpb.SignatureAlgorithm_RSA_PSS_SHA256:
		digest := sha256.Sum256(payload)
		signature, err = rsa.SignPSS(rand.Reader, s.rsa, crypto.SHA256, digest[:], pss)
	case benchpb.SignatureAlgorithm_ECDSA_P256_SHA256:
		digest := sha256.Sum256(payload)
		signature, err = signP1363(s.p256, digest[:])
	case benchpb.SignatureAlgorithm_ECDSA_P384_SHA384:
		digest := sha512.Sum384(payload)
		signature, err = signP1363(s.p384, digest[:])
	default:
		return nil, invalidAlgorithm(algorithm)
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "signing with %v failed: %v", algorithm, err)
	}
	return signature, nil
}

// signP1363 returns r || s, each left-padded to the curve's byte length (32 for P-256, 48 for
// P-384): IEEE P1363, not the DER SEQUENCE that ecdsa.SignASN1 makes.
func signP1363(key *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	r, sv, err := ecdsa.Sign(rand.Reader, key, digest)
	if err != nil {
		return nil, err
	}
	size := (key.Curve.Params().BitSize + 7) / 8
	signature := make([]byte, 2*size)
	r.FillBytes(signature[:size])
	sv.FillBytes(signature[size:])
	return signature, nil
}

func (s *cryptoService) GetPublicKey(_ context.Context, req *benchpb.PublicKeyRequest) (*benchpb.PublicKeyReply, error) {
	der, ok := s.spki[req.Algorithm]
	if !ok {
		return nil, invalidAlgorithm(req.Algorithm)
	}
	return &benchpb.PublicKeyReply{Algorithm: req.Algorithm, SubjectPublicKeyInfo: der}, nil
}

func invalidAlgorithm(algorithm benchpb.SignatureAlgorithm) error {
	if algorithm == benchpb.SignatureAlgorithm_SIGNATURE_ALGORITHM_UNSPECIFIED {
		return status.Error(codes.InvalidArgument, "algorithm is unspecified: name one of RSA_PKCS1_SHA256, RSA_PSS_SHA256, ECDSA_P256_SHA256, ECDSA_P384_SHA384")
	}
	return status.Errorf(codes.InvalidArgument, "unknown algorithm %d", int32(algorithm))
}
