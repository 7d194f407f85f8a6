using System.Security.Cryptography;
using Bench.Harness.Catalog;
using Bench.Harness.Processes;
using Bench.Harness.Run;
using Bench.Harness.Workloads;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using GrpcBench.Protos;

namespace Bench.Harness.Tests;

/// <summary>
/// The gRPC contract (csharp/Grpc/README.md, "The protocol"), checked against every gRPC server
/// in the catalog whatever its language, with grpc-dotnet as the independent client, and the
/// lean load client run against each: one load client for all. A new server is covered by adding
/// its manifest.
/// </summary>
public class GrpcConformanceTests
{
    /// <summary>Each distinct gRPC server command once (csharp-grpc-pipelined starts the csharp-grpc server as it is).</summary>
    public static TheoryData<string> GrpcServers
    {
        get
        {
            var data = new TheoryData<string>();
            var seen = new HashSet<string>();
            foreach (var i in Repo.Catalog.All.Where(i => i.HasServer && i.Transports.Contains(Transports.Tcp) && i.Workloads.Any(w => w is GrpcWorkload)))
                if (seen.Add(string.Join('\0', i.ServerCommand!))) data.Add(i.Name);
            return data;
        }
    }

    public static readonly int[] Sizes = [1, 100, 16 * 1024, 64 * 1024, 1024 * 1024];

    [Theory, MemberData(nameof(GrpcServers))]
    public async Task unary_echoes_payloads_from_1_byte_to_1MiB_exactly(string name)
    {
        await using var peer = await Peer.StartAsync(name);
        foreach (var size in Sizes)
        {
            var payload = Random(size);
            var reply = await peer.Call(Unary, new EchoRequest { Payload = payload, ClientSendUnixNs = 1 });
            Assert.True(reply.Payload == payload, $"{name}: the {size} B unary echo differs");
            Assert.True(reply.ServerReceiveUnixNs > 0, $"{name}: no server_receive_unix_ns");
        }
    }

    [Theory, MemberData(nameof(GrpcServers))]
    public async Task stream_answers_every_request_in_order_on_one_stream(string name)
    {
        await using var peer = await Peer.StartAsync(name);
        using var call = peer.Invoker.AsyncDuplexStreamingCall(Stream, null, new CallOptions(deadline: peer.Deadline));
        var sent = Enumerable.Range(0, 40).Select(i => Random(Sizes[i % Sizes.Length])).ToList();
        // Replies are read while requests go out, as a real peer does: a server may answer before the stream ends.
        var reading = Task.Run(async () =>
        {
            var got = new List<ByteString>();
            await foreach (var reply in call.ResponseStream.ReadAllAsync()) got.Add(reply.Payload);
            return got;
        });
        foreach (var payload in sent) await call.RequestStream.WriteAsync(new EchoRequest { Payload = payload });
        await call.RequestStream.CompleteAsync();
        var received = await reading;
        Assert.Equal(sent.Count, received.Count);
        for (var i = 0; i < sent.Count; i++)
            Assert.True(sent[i] == received[i], $"{name}: stream reply {i} ({sent[i].Length} B) differs or is out of order");
    }

    [Theory, MemberData(nameof(GrpcServers))]
    public async Task health_check_says_serving(string name)
    {
        await using var peer = await Peer.StartAsync(name);
        // grpc.health.v1.HealthCheckRequest{service=""} is empty, a named one is field 1; the reply is HealthCheckResponse{status=SERVING (1)}.
        foreach (var service in new[] { "", "bench.Echo", "bench.Crypto" })
        {
            byte[] request = service.Length == 0 ? [] : [0x0A, (byte)service.Length, .. System.Text.Encoding.ASCII.GetBytes(service)];
            var reply = await peer.Invoker.AsyncUnaryCall(HealthCheck, null, new CallOptions(deadline: peer.Deadline), request);
            Assert.True(reply.SequenceEqual(new byte[] { 0x08, 0x01 }), $"{name}: health of '{service}' is {Convert.ToHexString(reply)}, not SERVING (0801)");
        }
    }

    [Theory, MemberData(nameof(GrpcServers))]
    public async Task every_signature_verifies_with_the_served_public_key(string name)
    {
        await using var peer = await Peer.StartAsync(name);
        foreach (var algorithm in new[] { SignatureAlgorithm.RsaPkcs1Sha256, SignatureAlgorithm.RsaPssSha256, SignatureAlgorithm.EcdsaP256Sha256, SignatureAlgorithm.EcdsaP384Sha384 })
        {
            var key = await peer.Call(GetPublicKey, new PublicKeyRequest { Algorithm = algorithm });
            var payload = Random(100);
            var signed = await peer.Call(Sign, new SignRequest { Algorithm = algorithm, Payload = payload });
            Assert.Equal(algorithm, signed.Algorithm);
            Assert.True(Verifies(algorithm, key.SubjectPublicKeyInfo.ToByteArray(), payload.ToByteArray(), signed.Signature.ToByteArray()),
                $"{name}: a {algorithm} signature does not verify with the served key");
        }
    }

    [Theory, MemberData(nameof(GrpcServers))]
    public async Task an_unknown_algorithm_is_invalid_argument_and_an_oversized_message_resource_exhausted(string name)
    {
        await using var peer = await Peer.StartAsync(name);
        foreach (var algorithm in new[] { SignatureAlgorithm.Unspecified, (SignatureAlgorithm)99 })
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => peer.Call(Sign, new SignRequest { Algorithm = algorithm, Payload = Random(10) }));
            Assert.True(refused.StatusCode == StatusCode.InvalidArgument, $"{name}: algorithm {(int)algorithm} gave {refused.StatusCode}, not InvalidArgument");
        }
        // The contract's limit is 4 MiB each way; 5 MiB must be refused, not buffered and echoed.
        var tooBig = await Assert.ThrowsAsync<RpcException>(() => peer.Call(Unary, new EchoRequest { Payload = Random(5 * 1024 * 1024) }));
        Assert.True(tooBig.StatusCode == StatusCode.ResourceExhausted, $"{name}: a 5 MiB request gave {tooBig.StatusCode}, not ResourceExhausted");
        // And the connection still serves calls afterwards.
        var after = Random(100);
        Assert.True((await peer.Call(Unary, new EchoRequest { Payload = after })).Payload == after);
    }

    [Theory, MemberData(nameof(GrpcServers))]
    public async Task server_exits_with_status_0_promptly_on_sigterm_with_a_connection_open(string name)
    {
        await using var peer = await Peer.StartAsync(name);
        await peer.Call(Unary, new EchoRequest { Payload = Random(10) }); // the HTTP/2 connection is open and idle
        Assert.True(await peer.Server.StopAsync(), $"{name} ignored SIGTERM for {ServerProcess.StopGrace.TotalSeconds:F0} s");
        Assert.Equal(0, await peer.Server.Process.Exited);
    }

    [Theory, MemberData(nameof(GrpcServers))]
    public async Task the_lean_load_client_runs_every_workload_against_it_without_a_failed_call(string name)
    {
        var lean = await Repo.BuiltAsync(new SuiteOptions().GrpcClient);
        await using var peer = await Peer.StartAsync(name);
        foreach (var workload in new[] { "grpc-unary", "grpc-stream", "grpc-crypto" })
        {
            var (exit, result, stderr) = await Processes.RunClientAsync(lean, peer.Port,
                "--workload", workload, "--connections", "2", "--in-flight", "32", "--payload", "100", "--requests", "2000", "--timeout", "20");
            Assert.True(exit == 0 && result is { Failed: 0, Ok: > 0 },
                $"{name}, {workload}: exit {exit}, {(result is null ? "no RESULT line" : $"{result.Ok} ok, {result.Failed} failed")}: {stderr}");
        }
    }

    private static ByteString Random(int size) => ByteString.CopyFrom(RandomNumberGenerator.GetBytes(size));

    private static bool Verifies(SignatureAlgorithm algorithm, byte[] spki, byte[] data, byte[] signature)
    {
        switch (algorithm)
        {
            case SignatureAlgorithm.RsaPkcs1Sha256 or SignatureAlgorithm.RsaPssSha256:
                using (var rsa = RSA.Create())
                {
                    rsa.ImportSubjectPublicKeyInfo(spki, out _);
                    return rsa.VerifyData(data, signature, HashAlgorithmName.SHA256,
                        algorithm == SignatureAlgorithm.RsaPssSha256 ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1);
                }
            default:
                using (var ecdsa = ECDsa.Create())
                {
                    ecdsa.ImportSubjectPublicKeyInfo(spki, out _);
                    // IEEE P1363 (r || s, fixed width), the contract's form.
                    return ecdsa.VerifyData(data, signature,
                        algorithm == SignatureAlgorithm.EcdsaP384Sha384 ? HashAlgorithmName.SHA384 : HashAlgorithmName.SHA256,
                        DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
                }
        }
    }

    private static Marshaller<T> For<T>(MessageParser<T> parser) where T : IMessage<T> =>
        Marshallers.Create(m => m.ToByteArray(), parser.ParseFrom);

    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(b => b, b => b);

    private static readonly Method<EchoRequest, EchoReply> Unary = new(MethodType.Unary, "bench.Echo", "Unary", For(EchoRequest.Parser), For(EchoReply.Parser));
    private static readonly Method<EchoRequest, EchoReply> Stream = new(MethodType.DuplexStreaming, "bench.Echo", "Stream", For(EchoRequest.Parser), For(EchoReply.Parser));
    private static readonly Method<SignRequest, SignReply> Sign = new(MethodType.Unary, "bench.Crypto", "Sign", For(SignRequest.Parser), For(SignReply.Parser));
    private static readonly Method<PublicKeyRequest, PublicKeyReply> GetPublicKey =
        new(MethodType.Unary, "bench.Crypto", "GetPublicKey", For(PublicKeyRequest.Parser), For(PublicKeyReply.Parser));
    private static readonly Method<byte[], byte[]> HealthCheck = new(MethodType.Unary, "grpc.health.v1.Health", "Check", Raw, Raw);

    /// <summary>A catalog server started the way the harness starts it, and one grpc-dotnet channel to it (h2c).</summary>
    private sealed class Peer : IAsyncDisposable
    {
        public required ServerProcess Server { get; init; }
        public required int Port { get; init; }
        public required GrpcChannel Channel { get; init; }
        public CallInvoker Invoker => Channel.CreateCallInvoker();
        public DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

        public static async Task<Peer> StartAsync(string name)
        {
            var (server, host, port) = await Processes.StartServerAsync(await Repo.BuiltAsync(name));
            var channel = GrpcChannel.ForAddress($"http://{host}:{port}", new GrpcChannelOptions
            {
                MaxSendMessageSize = null, // the server, not this client, must enforce the limit
                MaxReceiveMessageSize = 8 * 1024 * 1024,
            });
            return new Peer { Server = server, Port = port, Channel = channel };
        }

        public async Task<TReply> Call<TRequest, TReply>(Method<TRequest, TReply> method, TRequest request) where TRequest : class where TReply : class =>
            await Invoker.AsyncUnaryCall(method, null, new CallOptions(deadline: Deadline), request);

        public async ValueTask DisposeAsync()
        {
            Channel.Dispose();
            await Server.DisposeAsync();
        }
    }
}
