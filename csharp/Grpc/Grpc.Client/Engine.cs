using System.Security.Cryptography;
using GrpcBench.Protos;

namespace GrpcBench.Client;

/// <summary>A request that did not end in a verified answer. <see cref="Kind"/> groups errors for the report.</summary>
public sealed class CallFailedException(string kind, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Kind => kind;
}

/// <summary>What one verified call returns to the runner.</summary>
public readonly record struct CallResult(int VerifiedBytes, long ServerReceiveUnixNs, SignatureAlgorithm Algorithm);

/// <summary>One way of talking gRPC to the server (grpc-dotnet's client, or the lean HTTP/2 client).</summary>
public interface ILoadEngine : IAsyncDisposable
{
    /// <summary>Connects every channel and fetches the public keys; throws when the server cannot be reached.</summary>
    Task StartAsync(CancellationToken cancel);

    /// <summary>One concurrent call slot. A streaming slot opens its stream here (not timed).</summary>
    Task<ICallSlot> OpenSlotAsync(int slot, CancellationToken cancel);
}

public interface ICallSlot : IAsyncDisposable
{
    /// <summary>Sends request <paramref name="k"/> and verifies the answer; throws <see cref="CallFailedException"/>.</summary>
    ValueTask<CallResult> CallAsync(long k, CancellationToken cancel);
}

/// <summary>
/// The payloads and the checks every engine shares. Byte j of request k on slot c is
/// (c + k + j) mod 251, so a crossed or stale echo is caught; all payloads are windows of one
/// array, so building a request allocates nothing.
/// </summary>
public sealed class Workbench
{
    public const int Period = 251;
    private readonly byte[] _pattern;

    public Workbench(ClientSettings settings)
    {
        Settings = settings;
        _pattern = new byte[settings.Payload + Period];
        for (var i = 0; i < _pattern.Length; i++) _pattern[i] = (byte)(i % Period);
    }

    public ClientSettings Settings { get; }

    public static int Offset(int slot, long k) => (int)((slot + k) % Period);

    public ReadOnlyMemory<byte> Payload(int slot, long k) => _pattern.AsMemory(Offset(slot, k), Settings.Payload);

    /// <summary>Whether request k of this slot goes to the crypto service (else echo).</summary>
    public bool IsSign(long k) => Settings.Service switch
    {
        Service.Crypto => true,
        Service.Both => (k & 1) == 1,
        _ => false,
    };

    public SignatureAlgorithm Algorithm(int slot, long k) =>
        Settings.Algorithms[(int)((slot + (Settings.Service == Service.Both ? k / 2 : k)) % Settings.Algorithms.Length)];

    public int CheckEcho(ReadOnlySpan<byte> echoed, int slot, long k)
    {
        var expected = Payload(slot, k).Span;
        if (!echoed.SequenceEqual(expected))
            throw new CallFailedException("wrong echo",
                $"wrong echo on slot {slot} request {k}: {echoed.Length} bytes back for {expected.Length} sent" +
                (echoed.Length == expected.Length ? $", first difference at byte {echoed.CommonPrefixLength(expected)}" : ""));
        return expected.Length;
    }

    private readonly Dictionary<SignatureAlgorithm, byte[]> _publicKeys = new();
    private ThreadLocal<Dictionary<SignatureAlgorithm, AsymmetricAlgorithm>>? _verifiers;

    /// <summary>Remembers a public key the server returned; every signature is checked against it.</summary>
    public void AddPublicKey(SignatureAlgorithm algorithm, byte[] subjectPublicKeyInfo)
    {
        _publicKeys[algorithm] = subjectPublicKeyInfo;
        // One verifier per thread: .NET's key objects are not documented as thread-safe.
        _verifiers = new(() => _publicKeys.ToDictionary(p => p.Key, p => Import(p.Key, p.Value)));
    }

    public IEnumerable<SignatureAlgorithm> KeysNeeded() =>
        Settings.Service == Service.Echo ? [] : Settings.Algorithms.Distinct();

    public void CheckSignature(SignatureAlgorithm algorithm, SignatureAlgorithm returned, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature, int slot, long k)
    {
        if (returned != algorithm)
            throw new CallFailedException("wrong algorithm", $"asked for {algorithm}, the server answered {returned} (slot {slot} request {k})");
        var key = _verifiers!.Value![algorithm];
        var valid = algorithm switch
        {
            SignatureAlgorithm.RsaPkcs1Sha256 => ((RSA)key).VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
            SignatureAlgorithm.RsaPssSha256 => ((RSA)key).VerifyData(data, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pss),
            SignatureAlgorithm.EcdsaP256Sha256 => ((ECDsa)key).VerifyData(data, signature, HashAlgorithmName.SHA256),
            SignatureAlgorithm.EcdsaP384Sha384 => ((ECDsa)key).VerifyData(data, signature, HashAlgorithmName.SHA384),
            _ => false,
        };
        if (!valid)
            throw new CallFailedException("bad signature", $"{algorithm} signature on slot {slot} request {k} does not verify with the server's public key");
    }

    private static AsymmetricAlgorithm Import(SignatureAlgorithm algorithm, byte[] spki)
    {
        AsymmetricAlgorithm key = algorithm is SignatureAlgorithm.RsaPkcs1Sha256 or SignatureAlgorithm.RsaPssSha256 ? RSA.Create() : ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(spki, out _);
        return key;
    }
}
