// Thread safety: an EVP_PKEY that nothing modifies any more may be used by many threads at
// once in OpenSSL 3 (its operations take their own per-operation context), so the three keys
// are shared. Contexts are not: every thread owns, in thread_local storage, one EVP_MD_CTX per
// algorithm initialised once (digest, key, padding, salt length), and for each call copies it
// into its own scratch context and signs with that. The copy costs far less than
// EVP_DigestSignInit, which looks the digest and signature implementations up in the provider
// tables on every call.
#include "crypto.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdexcept>
#include <vector>

namespace grpcbench {
namespace {

std::runtime_error openssl_error(const std::string& what) {
    unsigned long code = ERR_get_error();
    char reason[256] = "unknown error";
    if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
    ERR_clear_error();
    return std::runtime_error(what + ": " + reason);
}

struct MdCtxFree {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string spki_der(EVP_PKEY* key) {
    int length = i2d_PUBKEY(key, nullptr);
    if (length <= 0) throw openssl_error("i2d_PUBKEY");
    std::string der(static_cast<std::size_t>(length), '\0');
    auto* out = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_PUBKEY(key, &out) != length) throw openssl_error("i2d_PUBKEY");
    return der;
}

// ECDSA signs in DER (SEQUENCE { r INTEGER, s INTEGER }); the proto wants r||s, each
// left-padded to the field width.
void der_to_p1363(const unsigned char* der, std::size_t length, std::size_t half, std::string& out) {
    const unsigned char* cursor = der;
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(length));
    if (sig == nullptr) throw openssl_error("d2i_ECDSA_SIG");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig, &r, &s);
    out.resize(2 * half);
    auto* bytes = reinterpret_cast<unsigned char*>(out.data());
    bool ok = BN_bn2binpad(r, bytes, static_cast<int>(half)) == static_cast<int>(half) &&
              BN_bn2binpad(s, bytes + half, static_cast<int>(half)) == static_cast<int>(half);
    ECDSA_SIG_free(sig);
    if (!ok) throw std::runtime_error("ECDSA signature does not fit its field width");
}

struct Recipe {
    const EVP_MD* (*digest)();
    int padding;            // RSA padding, 0 for ECDSA
    std::size_t p1363_half;  // ECDSA field width in bytes, 0 for RSA
};

Recipe recipe(bench::SignatureAlgorithm algorithm) {
    switch (algorithm) {
        case bench::RSA_PKCS1_SHA256: return {EVP_sha256, RSA_PKCS1_PADDING, 0};
        case bench::RSA_PSS_SHA256: return {EVP_sha256, RSA_PKCS1_PSS_PADDING, 0};
        case bench::ECDSA_P256_SHA256: return {EVP_sha256, 0, 32};
        case bench::ECDSA_P384_SHA384: return {EVP_sha384, 0, 48};
        default: throw std::logic_error("unknown signature algorithm");
    }
}

// One thread's contexts: a ready-made template per algorithm and the scratch copy.
struct ThreadContexts {
    std::array<MdCtx, 5> templates;
    MdCtx scratch{EVP_MD_CTX_new()};
    std::vector<unsigned char> der;
};

}  // namespace

Signer::Signer() {
    rsa_.reset(EVP_RSA_gen(2048));
    if (!rsa_) throw openssl_error("RSA 2048 key generation");
    p256_.reset(EVP_EC_gen("P-256"));
    if (!p256_) throw openssl_error("P-256 key generation");
    p384_.reset(EVP_EC_gen("P-384"));
    if (!p384_) throw openssl_error("P-384 key generation");
    spki_[bench::RSA_PKCS1_SHA256] = spki_der(rsa_.get());
    spki_[bench::RSA_PSS_SHA256] = spki_[bench::RSA_PKCS1_SHA256];
    spki_[bench::ECDSA_P256_SHA256] = spki_der(p256_.get());
    spki_[bench::ECDSA_P384_SHA384] = spki_der(p384_.get());
}

bool Signer::known(int algorithm) {
    return algorithm >= bench::RSA_PKCS1_SHA256 && algorithm <= bench::ECDSA_P384_SHA384;
}

const std::string& Signer::public_key(bench::SignatureAlgorithm algorithm) const { return spki_.at(algorithm); }

void Signer::sign(bench::SignatureAlgorithm algorithm, std::string_view payload, std::string& signature) const {
    thread_local ThreadContexts contexts;
    const Recipe how = recipe(algorithm);
    EVP_PKEY* key = how.p1363_half == 0 ? rsa_.get() : algorithm == bench::ECDSA_P256_SHA256 ? p256_.get() : p384_.get();

    MdCtx& prepared = contexts.templates[algorithm];
    if (!prepared) {
        MdCtx ctx(EVP_MD_CTX_new());
        EVP_PKEY_CTX* pctx = nullptr;
        if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, how.digest(), nullptr, key) != 1) {
            throw openssl_error("EVP_DigestSignInit");
        }
        if (how.padding != 0 && EVP_PKEY_CTX_set_rsa_padding(pctx, how.padding) != 1) {
            throw openssl_error("EVP_PKEY_CTX_set_rsa_padding");
        }
        if (how.padding == RSA_PKCS1_PSS_PADDING &&
            (EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)) {
            throw openssl_error("RSA-PSS parameters");
        }
        prepared = std::move(ctx);
    }
    if (!contexts.scratch || EVP_MD_CTX_copy_ex(contexts.scratch.get(), prepared.get()) != 1) {
        throw openssl_error("EVP_MD_CTX_copy_ex");
    }

    const auto* data = reinterpret_cast<const unsigned char*>(payload.data());
    std::size_t length = static_cast<std::size_t>(EVP_PKEY_get_size(key));
    if (how.p1363_half == 0) {
        signature.resize(length);
        auto* out = reinterpret_cast<unsigned char*>(signature.data());
        if (EVP_DigestSign(contexts.scratch.get(), out, &length, data, payload.size()) != 1) {
            throw openssl_error("EVP_DigestSign");
        }
        signature.resize(length);
    } else {
        contexts.der.resize(length);
        if (EVP_DigestSign(contexts.scratch.get(), contexts.der.data(), &length, data, payload.size()) != 1) {
            throw openssl_error("EVP_DigestSign");
        }
        der_to_p1363(contexts.der.data(), length, how.p1363_half, signature);
    }
}

}  // namespace grpcbench
