// The signing keys of bench.Crypto: made once at start-up, shared read-only by every thread.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "bench.pb.h"

namespace grpcbench {

struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

class Signer {
public:
    // Generates the three keys (RSA 2048, P-256, P-384); throws std::runtime_error with
    // OpenSSL's reason if it cannot.
    Signer();

    // True for the four algorithms the proto names; false for UNSPECIFIED and unknown numbers.
    static bool known(int algorithm);

    // Signs `payload` with `algorithm` (known(algorithm) must hold) into `signature`:
    // RSA the PKCS#1 signature, ECDSA IEEE P1363 r||s. Throws std::runtime_error when OpenSSL
    // fails. Safe to call from any number of threads at once (see crypto.cpp).
    void sign(bench::SignatureAlgorithm algorithm, std::string_view payload, std::string& signature) const;

    // X.509 SubjectPublicKeyInfo DER of the key behind `algorithm` (known(algorithm) must hold).
    const std::string& public_key(bench::SignatureAlgorithm algorithm) const;

private:
    Pkey rsa_;
    Pkey p256_;
    Pkey p384_;
    std::array<std::string, 5> spki_;  // by algorithm number; [0] unused
};

}  // namespace grpcbench
