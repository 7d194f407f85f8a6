using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using GrpcBench.Protos;

namespace GrpcBench.Client;

/// <summary>
/// The reference engine: grpc-dotnet's Grpc.Net.Client on SocketsHttpHandler, one handler (and
/// so one connection pool) per channel. Simple and standard, but about 30 us of client CPU per
/// call (README.md), so it measures itself before it measures a fast server.
/// </summary>
sealed class GrpcNetEngine(Workbench bench) : ILoadEngine
{
    private readonly List<GrpcChannel> _channels = new();

    public async Task StartAsync(CancellationToken cancel)
    {
        var s = bench.Settings;
        for (var i = 0; i < s.Connections; i++)
        {
            var handler = new SocketsHttpHandler
            {
                // More calls than the server's stream limit open another connection instead of queueing.
                EnableMultipleHttp2Connections = true,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                ConnectTimeout = s.Timeout,
                ConnectCallback = s.Address is ServerAddress.Tcp ? null : (_, ct) => ConnectAsync(s, ct),
            };
            var address = s.Address is ServerAddress.Tcp t ? $"http://{(t.Host.Contains(':') ? $"[{t.Host}]" : t.Host)}:{t.Port}" : "http://localhost";
            _channels.Add(GrpcChannel.ForAddress(address, new GrpcChannelOptions
            {
                HttpHandler = handler,
                MaxReceiveMessageSize = null,
                MaxSendMessageSize = null,
            }));
        }
        foreach (var channel in _channels) await channel.ConnectAsync(cancel);

        var crypto = new Crypto.CryptoClient(_channels[0]);
        foreach (var algorithm in bench.KeysNeeded())
        {
            var reply = await crypto.GetPublicKeyAsync(new PublicKeyRequest { Algorithm = algorithm }, cancellationToken: cancel);
            bench.AddPublicKey(algorithm, reply.SubjectPublicKeyInfo.ToByteArray());
        }
    }

    private static async ValueTask<Stream> ConnectAsync(ClientSettings s, CancellationToken cancel)
    {
        if (s.Address is ServerAddress.Vsock v)
            return new NetworkStream(await Vsock.ConnectAsync(v.Cid, v.Port, s.Timeout, cancel), ownsSocket: true);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(((ServerAddress.Unix)s.Address).Path), cancel);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public Task<ICallSlot> OpenSlotAsync(int slot, CancellationToken cancel)
    {
        var channel = _channels[slot % _channels.Count];
        ICallSlot opened = bench.Settings.Workload == Workload.Stream
            ? new StreamSlot(bench, slot, new Echo.EchoClient(channel))
            : new UnarySlot(bench, slot, new Echo.EchoClient(channel), new Crypto.CryptoClient(channel));
        return Task.FromResult(opened);
    }

    public ValueTask DisposeAsync()
    {
        foreach (var channel in _channels) channel.Dispose();
        return ValueTask.CompletedTask;
    }

    private static CallFailedException Failure(RpcException e) =>
        new("status " + e.StatusCode, $"grpc status {e.StatusCode}: {e.Status.Detail}", e);

    private sealed class UnarySlot(Workbench bench, int slot, Echo.EchoClient echo, Crypto.CryptoClient crypto) : ICallSlot
    {
        public async ValueTask<CallResult> CallAsync(long k, CancellationToken cancel)
        {
            var payload = bench.Payload(slot, k);
            try
            {
                if (bench.IsSign(k))
                {
                    var algorithm = bench.Algorithm(slot, k);
                    var reply = await crypto.SignAsync(
                        new SignRequest { Algorithm = algorithm, Payload = UnsafeByteOperations.UnsafeWrap(payload) }, cancellationToken: cancel);
                    bench.CheckSignature(algorithm, reply.Algorithm, payload.Span, reply.Signature.Span, slot, k);
                    return new(0, reply.ServerReceiveUnixNs, algorithm);
                }
                var echoed = await echo.UnaryAsync(new EchoRequest { Payload = UnsafeByteOperations.UnsafeWrap(payload) }, cancellationToken: cancel);
                return new(bench.CheckEcho(echoed.Payload.Span, slot, k), echoed.ServerReceiveUnixNs, default);
            }
            catch (RpcException e)
            {
                throw Failure(e);
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>One bidirectional stream per slot, used as ping-pong; reopened after a failure.</summary>
    private sealed class StreamSlot(Workbench bench, int slot, Echo.EchoClient echo) : ICallSlot
    {
        private AsyncDuplexStreamingCall<EchoRequest, EchoReply>? _call = echo.Stream();

        public async ValueTask<CallResult> CallAsync(long k, CancellationToken cancel)
        {
            var call = _call ??= echo.Stream();
            try
            {
                await call.RequestStream.WriteAsync(new EchoRequest { Payload = UnsafeByteOperations.UnsafeWrap(bench.Payload(slot, k)) }, cancel);
                if (!await call.ResponseStream.MoveNext(cancel))
                    throw new CallFailedException("stream ended", $"the server ended stream {slot} before echoing request {k}");
                var reply = call.ResponseStream.Current;
                return new(bench.CheckEcho(reply.Payload.Span, slot, k), reply.ServerReceiveUnixNs, default);
            }
            catch (Exception e) when (e is RpcException or CallFailedException or OperationCanceledException or InvalidOperationException)
            {
                // A stream that failed once is done: drop it, and open a new one for the next call.
                call.Dispose();
                _call = null;
                throw e is RpcException rpc ? Failure(rpc) : e;
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_call is not { } call) return;
            try
            {
                await call.RequestStream.CompleteAsync();
                while (await call.ResponseStream.MoveNext()) { }
            }
            catch (Exception e) when (e is RpcException or InvalidOperationException or IOException)
            {
                // The stream already failed; the failure was counted where it happened.
            }
            call.Dispose();
        }
    }
}
