using System.Security.Cryptography;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using GrpcBench.Protos;

namespace GrpcBench.Tests;

/// <summary>The services, called with grpc-dotnet's own client (an oracle independent of ours).</summary>
public sealed class ServiceTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private Echo.EchoClient Echo => new(fixture.Server.Channel);
    private Crypto.CryptoClient Crypto => new(fixture.Server.Channel);

    private static long UnixNanos() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    private static byte[] Pattern(int length, int seed) => Enumerable.Range(0, length).Select(i => (byte)((i + seed) % 251)).ToArray();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(65536)]
    public async Task Unary_echo_returns_the_exact_bytes_and_when_the_server_received_them(int size)
    {
        var payload = Pattern(size, size);
        var before = UnixNanos();
        var reply = await Echo.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(payload), ClientSendUnixNs = before });
        var after = UnixNanos();

        Assert.Equal(payload, reply.Payload.ToByteArray());
        Assert.InRange(reply.ServerReceiveUnixNs, before - 1_000_000, after + 1_000_000); // same clock, 1 ms slack for its 100 ns ticks
    }

    [Fact]
    public async Task Stream_echoes_every_message_in_order_with_timestamps()
    {
        using var call = Echo.Stream();
        long previous = 0;
        for (var i = 0; i < 100; i++)
        {
            var payload = Pattern(10 + i, i);
            await call.RequestStream.WriteAsync(new EchoRequest { Payload = ByteString.CopyFrom(payload) });
            Assert.True(await call.ResponseStream.MoveNext());
            Assert.Equal(payload, call.ResponseStream.Current.Payload.ToByteArray());
            Assert.True(call.ResponseStream.Current.ServerReceiveUnixNs >= previous);
            previous = call.ResponseStream.Current.ServerReceiveUnixNs;
        }
        await call.RequestStream.CompleteAsync();
        Assert.False(await call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Theory]
    [InlineData(SignatureAlgorithm.RsaPkcs1Sha256)]
    [InlineData(SignatureAlgorithm.RsaPssSha256)]
    [InlineData(SignatureAlgorithm.EcdsaP256Sha256)]
    [InlineData(SignatureAlgorithm.EcdsaP384Sha384)]
    public async Task Every_signature_verifies_with_the_returned_public_key(SignatureAlgorithm algorithm)
    {
        var key = await Crypto.GetPublicKeyAsync(new PublicKeyRequest { Algorithm = algorithm });
        Assert.Equal(algorithm, key.Algorithm);
        foreach (var size in new[] { 0, 1, 100, 4096 })
        {
            var payload = Pattern(size, 7);
            var reply = await Crypto.SignAsync(new SignRequest { Algorithm = algorithm, Payload = ByteString.CopyFrom(payload) });
            Assert.Equal(algorithm, reply.Algorithm);
            var signature = reply.Signature.ToByteArray();
            Assert.True(Verify(algorithm, key.SubjectPublicKeyInfo.ToByteArray(), payload, signature), $"{algorithm} on {size} bytes");

            // And it is a signature of exactly these bytes: one flipped bit fails.
            if (size > 0)
            {
                payload[0] ^= 1;
                Assert.False(Verify(algorithm, key.SubjectPublicKeyInfo.ToByteArray(), payload, signature));
            }
        }
    }

    private static bool Verify(SignatureAlgorithm algorithm, byte[] spki, byte[] data, byte[] signature)
    {
        switch (algorithm)
        {
            case SignatureAlgorithm.RsaPkcs1Sha256 or SignatureAlgorithm.RsaPssSha256:
                using (var rsa = RSA.Create())
                {
                    rsa.ImportSubjectPublicKeyInfo(spki, out _);
                    Assert.Equal(2048, rsa.KeySize);
                    var padding = algorithm == SignatureAlgorithm.RsaPssSha256 ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1;
                    return rsa.VerifyData(data, signature, HashAlgorithmName.SHA256, padding);
                }
            default:
                using (var ecdsa = ECDsa.Create())
                {
                    ecdsa.ImportSubjectPublicKeyInfo(spki, out _);
                    var p384 = algorithm == SignatureAlgorithm.EcdsaP384Sha384;
                    Assert.Equal(p384 ? 384 : 256, ecdsa.KeySize);
                    return ecdsa.VerifyData(data, signature, p384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256);
                }
        }
    }

    [Theory]
    [InlineData(SignatureAlgorithm.Unspecified)]
    [InlineData((SignatureAlgorithm)99)]
    public async Task An_unsupported_algorithm_is_InvalidArgument(SignatureAlgorithm algorithm)
    {
        var sign = await Assert.ThrowsAsync<RpcException>(() =>
            Crypto.SignAsync(new SignRequest { Algorithm = algorithm, Payload = ByteString.CopyFromUtf8("x") }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, sign.StatusCode);
        var key = await Assert.ThrowsAsync<RpcException>(() => Crypto.GetPublicKeyAsync(new PublicKeyRequest { Algorithm = algorithm }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, key.StatusCode);
    }

    [Fact]
    public async Task A_message_over_the_default_4_MiB_limit_is_ResourceExhausted_and_the_server_goes_on()
    {
        var tooBig = new EchoRequest { Payload = ByteString.CopyFrom(new byte[4 << 20]) };
        var e = await Assert.ThrowsAsync<RpcException>(() => Echo.UnaryAsync(tooBig).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal(3, (await Echo.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("abc") })).Payload.Length);
    }

    [Fact]
    public async Task A_configured_message_limit_is_enforced_on_unary_and_streaming_calls()
    {
        await using var server = await LiveServer.StartAsync(maxMessageBytes: 16 << 10);
        var echo = new Echo.EchoClient(server.Channel);
        Assert.Equal(15000, (await echo.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[15000]) })).Payload.Length);

        var unary = await Assert.ThrowsAsync<RpcException>(() =>
            echo.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[16 << 10]) }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, unary.StatusCode);

        using var call = echo.Stream();
        // The server's refusal can reach the client while it is still writing or once it reads: either way, ResourceExhausted.
        var stream = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[20000]) });
            await call.ResponseStream.MoveNext();
        });
        Assert.Equal(StatusCode.ResourceExhausted, stream.StatusCode);
    }

    [Fact]
    public async Task A_deadline_that_passes_is_DeadlineExceeded()
    {
        // A stream the client never writes to: the server has nothing to answer, so only the deadline ends it.
        using var call = Echo.Stream(deadline: DateTime.UtcNow.AddMilliseconds(200));
        var e = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.DeadlineExceeded, e.StatusCode);

        var expired = await Assert.ThrowsAsync<RpcException>(() =>
            Echo.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(-1)).ResponseAsync);
        Assert.Equal(StatusCode.DeadlineExceeded, expired.StatusCode);
    }

    [Fact]
    public async Task Cancelled_streams_leave_the_server_serving()
    {
        for (var i = 0; i < 20; i++)
        {
            using var cancel = new CancellationTokenSource();
            var call = Echo.Stream(cancellationToken: cancel.Token);
            await call.RequestStream.WriteAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("before") });
            Assert.True(await call.ResponseStream.MoveNext());
            await call.RequestStream.WriteAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("in flight") });
            cancel.Cancel(); // RST_STREAM mid-stream
            var e = await Assert.ThrowsAnyAsync<Exception>(async () => { while (await call.ResponseStream.MoveNext()) { } });
            Assert.True(e is RpcException { StatusCode: StatusCode.Cancelled } or OperationCanceledException, e.ToString());
            call.Dispose();
        }
        // The same connection and fresh ones still work.
        Assert.Equal("after", (await Echo.UnaryAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("after") })).Payload.ToStringUtf8());
        using var fresh = LiveServer.OpenChannel(fixture.Server.Address);
        Assert.Equal("fresh", (await new Echo.EchoClient(fresh).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFromUtf8("fresh") })).Payload.ToStringUtf8());
    }

    [Fact]
    public async Task Health_check_reports_SERVING()
    {
        var health = new Health.HealthClient(fixture.Server.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
    }

    [Fact]
    public async Task Reflection_lists_both_services_for_grpcurl_and_ghz()
    {
        using var call = new ServerReflection.ServerReflectionClient(fixture.Server.Channel).ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        Assert.True(await call.ResponseStream.MoveNext());
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("bench.Echo", names);
        Assert.Contains("bench.Crypto", names);
        await call.RequestStream.CompleteAsync();
    }
}
