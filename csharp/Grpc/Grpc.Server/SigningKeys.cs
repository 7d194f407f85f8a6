using System.Security.Cryptography;
using GrpcBench.Protos;

namespace GrpcBench.Server;

/// <summary>
/// The server's signing keys, made once at start-up: one RSA 2048 key (used with both PKCS#1
/// v1.5 and PSS padding), one P-256 key and one P-384 key.
/// </summary>
/// <remarks>
/// .NET documents its RSA and ECDsa instances as not thread-safe, so each thread signs with its
/// own instance imported from the same private key: correct under any concurrency, and no lock
/// on the hot path.
/// </remarks>
public sealed class SigningKeys : IDisposable
{
    public static readonly SignatureAlgorithm[] Supported =
    [
        SignatureAlgorithm.RsaPkcs1Sha256, SignatureAlgorithm.RsaPssSha256,
        SignatureAlgorithm.EcdsaP256Sha256, SignatureAlgorithm.EcdsaP384Sha384,
    ];

    private readonly ThreadLocal<RSA> _rsa;
    private readonly ThreadLocal<ECDsa> _p256;
    private readonly ThreadLocal<ECDsa> _p384;
    private readonly byte[] _rsaPublic, _p256Public, _p384Public;

    public SigningKeys()
    {
        using var rsa = RSA.Create(2048);
        using var p256 = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        (_rsaPublic, _p256Public, _p384Public) =
            (rsa.ExportSubjectPublicKeyInfo(), p256.ExportSubjectPublicKeyInfo(), p384.ExportSubjectPublicKeyInfo());

        var rsaPrivate = rsa.ExportPkcs8PrivateKey();
        var p256Private = p256.ExportPkcs8PrivateKey();
        var p384Private = p384.ExportPkcs8PrivateKey();
        _rsa = new(() => Import(RSA.Create(), rsaPrivate), trackAllValues: true);
        _p256 = new(() => Import(ECDsa.Create(), p256Private), trackAllValues: true);
        _p384 = new(() => Import(ECDsa.Create(), p384Private), trackAllValues: true);
    }

    public static bool IsSupported(SignatureAlgorithm algorithm) => Supported.Contains(algorithm);

    public byte[] Sign(SignatureAlgorithm algorithm, ReadOnlySpan<byte> data) => algorithm switch
    {
        SignatureAlgorithm.RsaPkcs1Sha256 => _rsa.Value!.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        // .NET's PSS uses MGF1 with the same hash and a salt as long as the hash (32 bytes).
        SignatureAlgorithm.RsaPssSha256 => _rsa.Value!.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pss),
        SignatureAlgorithm.EcdsaP256Sha256 => _p256.Value!.SignData(data, HashAlgorithmName.SHA256),
        SignatureAlgorithm.EcdsaP384Sha384 => _p384.Value!.SignData(data, HashAlgorithmName.SHA384),
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "unsupported"),
    };

    public byte[] PublicKey(SignatureAlgorithm algorithm) => algorithm switch
    {
        SignatureAlgorithm.RsaPkcs1Sha256 or SignatureAlgorithm.RsaPssSha256 => _rsaPublic,
        SignatureAlgorithm.EcdsaP256Sha256 => _p256Public,
        SignatureAlgorithm.EcdsaP384Sha384 => _p384Public,
        _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "unsupported"),
    };

    private static T Import<T>(T key, byte[] pkcs8) where T : AsymmetricAlgorithm
    {
        key.ImportPkcs8PrivateKey(pkcs8, out _);
        return key;
    }

    public void Dispose()
    {
        foreach (var key in _rsa.Values) key.Dispose();
        foreach (var key in _p256.Values) key.Dispose();
        foreach (var key in _p384.Values) key.Dispose();
        _rsa.Dispose();
        _p256.Dispose();
        _p384.Dispose();
    }
}
