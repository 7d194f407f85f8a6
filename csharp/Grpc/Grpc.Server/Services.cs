using Google.Protobuf;
using Grpc.Core;
using GrpcBench.Protos;

namespace GrpcBench.Server;

static class Clock
{
    /// <summary>Wall clock as Unix nanoseconds (100 ns resolution), comparable across processes.</summary>
    public static long UnixNanos() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
}

/// <summary>Echo: the payload back, stamped with when it arrived.</summary>
sealed class EchoService : Echo.EchoBase
{
    public override Task<EchoReply> Unary(EchoRequest request, ServerCallContext context) =>
        Task.FromResult(new EchoReply { Payload = request.Payload, ServerReceiveUnixNs = Clock.UnixNanos() });

    public override async Task Stream(
        IAsyncStreamReader<EchoRequest> requests, IServerStreamWriter<EchoReply> responses, ServerCallContext context)
    {
        // One reply per request, in order. A client that cancels or resets the stream ends
        // MoveNext with an exception that grpc-dotnet turns into the call's end; nothing else
        // on the connection is affected.
        while (await requests.MoveNext(context.CancellationToken))
        {
            var received = Clock.UnixNanos();
            await responses.WriteAsync(new EchoReply { Payload = requests.Current.Payload, ServerReceiveUnixNs = received });
        }
    }
}

/// <summary>Crypto: signatures with the keys made at start-up, and their public halves.</summary>
sealed class CryptoService(SigningKeys keys) : Crypto.CryptoBase
{
    public override Task<SignReply> Sign(SignRequest request, ServerCallContext context)
    {
        var received = Clock.UnixNanos();
        var signature = keys.Sign(Supported(request.Algorithm), request.Payload.Span);
        return Task.FromResult(new SignReply
        {
            Algorithm = request.Algorithm,
            // The array is fresh and never touched again, so wrapping it without a copy is safe.
            Signature = UnsafeByteOperations.UnsafeWrap(signature),
            ServerReceiveUnixNs = received,
        });
    }

    public override Task<PublicKeyReply> GetPublicKey(PublicKeyRequest request, ServerCallContext context) =>
        Task.FromResult(new PublicKeyReply
        {
            Algorithm = request.Algorithm,
            SubjectPublicKeyInfo = ByteString.CopyFrom(keys.PublicKey(Supported(request.Algorithm))),
        });

    private static SignatureAlgorithm Supported(SignatureAlgorithm algorithm) =>
        SigningKeys.IsSupported(algorithm)
            ? algorithm
            : throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"unsupported signature algorithm {algorithm}; supported: {string.Join(", ", SigningKeys.Supported)}"));
}
