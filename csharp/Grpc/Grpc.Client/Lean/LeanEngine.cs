using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using GrpcBench.Client.Lean;
using GrpcBench.Protos;

namespace GrpcBench.Client;

/// <summary>
/// The default engine: gRPC over <see cref="H2Connection"/>, a lean HTTP/2 client of our own.
/// Requests are serialized once per distinct payload (251 of them) and reused; answers are
/// read in place and checked byte for byte; nothing is allocated per call on the hot path.
/// </summary>
sealed class LeanEngine(Workbench bench) : ILoadEngine
{
    private readonly Workbench _bench = bench;
    private const string UnaryPath = "/bench.Echo/Unary", StreamPath = "/bench.Echo/Stream";
    private const string SignPath = "/bench.Crypto/Sign", KeyPath = "/bench.Crypto/GetPublicKey";

    private readonly List<ReconnectingConnection> _connections = new();
    private readonly Dictionary<int, SharedStream> _shared = new();
    private byte[][]? _echoRequests;
    private byte[][][]? _signRequests;

    public async Task StartAsync(CancellationToken cancel)
    {
        var s = _bench.Settings;
        var connections = s.Connections;
        for (var i = 0; i < connections; i++)
        {
            var connection = new ReconnectingConnection(c => OpenConnectionAsync(s, c), s.Timeout);
            await connection.StartAsync(cancel);
            _connections.Add(connection);
            // Not told how many connections: open as many as the server's stream limit needs
            // (10 for 10,000 calls on the tuned server, 100 on one with Kestrel's default 100).
            var limit = connection.Current.MaxConcurrentStreams;
            if (i == 0 && !s.ConnectionsGiven && limit > 0)
                connections = Math.Max(connections, (int)Math.Min(s.InFlight, ((long)Streams(s) + limit - 1) / limit));
        }
        // More calls per connection than the server allows would queue inside the client and
        // measure the queue; say so instead of hiding it.
        var perConnection = (Streams(s) + connections - 1) / connections;
        var allowed = _connections[0].Current.MaxConcurrentStreams;
        if (perConnection > allowed)
            Console.Error.WriteLine($"csharp-grpc-client: {perConnection} calls per connection but the server allows " +
                                    $"{allowed} streams; the rest wait in the client (use more --connections)");

        PrepareRequests();
        var stream = new H2Stream();
        foreach (var algorithm in _bench.KeysNeeded())
        {
            var reply = PublicKeyReply.Parser.ParseFrom(
                await UnaryAsync(_connections[0], stream, KeyPath, new PublicKeyRequest { Algorithm = algorithm }.ToByteArray(), cancel));
            _bench.AddPublicKey(algorithm, reply.SubjectPublicKeyInfo.ToByteArray());
        }
    }

    /// <summary>HTTP/2 streams the load keeps open at once: one per call, or one per D pipelined calls.</summary>
    private static int Streams(ClientSettings s) =>
        s.Workload == Workload.Stream && s.StreamDepth > 1 ? (s.InFlight + s.StreamDepth - 1) / s.StreamDepth : s.InFlight;

    /// <summary>The connections actually opened (the report names them).</summary>
    public int Connections => _connections.Count;

    /// <summary>Connections opened to replace one the server sent GOAWAY on, or that was lost.</summary>
    public int Reconnects => _connections.Sum(c => c.Reconnects);

    /// <summary>One serialized request per payload offset (the payload repeats with period 251).</summary>
    private void PrepareRequests()
    {
        var s = _bench.Settings;
        if ((long)s.Payload * Workbench.Period > 64L << 20) return; // too big to keep: build per call
        if (s.Service != Service.Crypto)
            _echoRequests = Enumerable.Range(0, Workbench.Period).Select(o => EchoRequest(_bench.Payload(o, 0))).ToArray();
        if (s.Service != Service.Echo)
            _signRequests = Enumerable.Range(0, 8).Select(a =>
                s.Algorithms.Contains((SignatureAlgorithm)a)
                    ? Enumerable.Range(0, Workbench.Period).Select(o => SignRequest((SignatureAlgorithm)a, _bench.Payload(o, 0))).ToArray()
                    : []).ToArray();
    }

    private static byte[] EchoRequest(ReadOnlyMemory<byte> payload) =>
        new EchoRequest { Payload = UnsafeByteOperations.UnsafeWrap(payload) }.ToByteArray();

    private static byte[] SignRequest(SignatureAlgorithm algorithm, ReadOnlyMemory<byte> payload) =>
        new SignRequest { Algorithm = algorithm, Payload = UnsafeByteOperations.UnsafeWrap(payload) }.ToByteArray();

    /// <summary>A new HTTP/2 connection, ready for calls (the server's SETTINGS arrived).</summary>
    private static async Task<H2Connection> OpenConnectionAsync(ClientSettings s, CancellationToken cancel)
    {
        var (socket, authority) = await ConnectAsync(s, cancel);
        var connection = new H2Connection(socket, authority);
        try
        {
            await connection.StartAsync(cancel);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private static async Task<(Socket, string)> ConnectAsync(ClientSettings s, CancellationToken cancel)
    {
        switch (s.Address)
        {
            case ServerAddress.Tcp t:
                var addresses = IPAddress.TryParse(t.Host, out var ip) ? [ip] : await Dns.GetHostAddressesAsync(t.Host, cancel);
                var tcp = new Socket(addresses[0].AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try { await tcp.ConnectAsync(addresses[0], t.Port, cancel); }
                catch { tcp.Dispose(); throw; }
                return (tcp, t.Host.Contains(':') ? $"[{t.Host}]:{t.Port}" : $"{t.Host}:{t.Port}"); // IPv6 literals in brackets
            case ServerAddress.Unix u:
                var unix = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try { await unix.ConnectAsync(new UnixDomainSocketEndPoint(u.Path), cancel); }
                catch { unix.Dispose(); throw; }
                return (unix, "localhost");
            case ServerAddress.Vsock v:
                return (await Vsock.ConnectAsync(v.Cid, v.Port, s.Timeout, cancel), "localhost");
            default:
                throw new ArgumentException(s.Address.ToString());
        }
    }

    public async Task<ICallSlot> OpenSlotAsync(int slot, CancellationToken cancel)
    {
        var connection = _connections[slot % _connections.Count];
        if (_bench.Settings.Workload != Workload.Stream) return new UnarySlot(this, connection, slot);
        if (_bench.Settings.StreamDepth > 1)
        {
            // Slots 0..D-1 share the first stream, D..2D-1 the next, and so on.
            var index = slot / _bench.Settings.StreamDepth;
            if (!_shared.TryGetValue(index, out var shared))
                _shared[index] = shared = new SharedStream(_connections[index % _connections.Count], StreamPath);
            return new PipelinedSlot(this, shared, slot);
        }
        var streamSlot = new StreamSlot(this, connection, slot);
        await streamSlot.OpenAsync(cancel);
        return streamSlot;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _connections) await c.DisposeAsync();
    }

    /// <summary>One unary call: request out, wait for the trailers, the single answer message back.</summary>
    private static async ValueTask<byte[]> UnaryAsync(ReconnectingConnection c, H2Stream stream, string path, byte[] request, CancellationToken cancel)
    {
        await c.OpenAsync(stream, path, request, cancel);
        await stream.WaitAsync(forEnd: true);
        return TakeOnlyMessage(stream).ToArray();
    }

    /// <summary>The answer of a finished unary call, or the failure it ended with.</summary>
    private static ReadOnlySpan<byte> TakeOnlyMessage(H2Stream stream)
    {
        if (stream.Error is { } error) throw error as CallFailedException ?? new CallFailedException(Kind(error), error.Message, error);
        CheckStatus(stream);
        if (!stream.TryTakeMessage(out var message) || stream.HasLeftover)
            throw new CallFailedException("bad response", "a unary call did not return exactly one message");
        return message;
    }

    private static void CheckStatus(H2Stream stream)
    {
        if (stream.Headers.HttpStatus != 200)
            throw new CallFailedException("http " + stream.Headers.HttpStatus, $"HTTP status {stream.Headers.HttpStatus} instead of 200");
        // gRPC's status is in the trailers; a response that ends without them did not succeed.
        if (!stream.TrailersReceived)
            throw new CallFailedException("missing trailers", $"stream {stream.Id} ended without trailers (no grpc-status)");
        var status = stream.Trailers.GrpcStatus;
        if (status != 0)
        {
            var name = status < 0 ? "missing" : ((Grpc.Core.StatusCode)status).ToString();
            throw new CallFailedException("status " + name, $"grpc status {name}: {stream.Trailers.GrpcMessage}");
        }
    }

    private static string Kind(Exception e) => e switch
    {
        OperationCanceledException => "cancelled",
        IOException => "connection",
        _ => e.GetType().Name,
    };

    private sealed class UnarySlot(LeanEngine engine, ReconnectingConnection connection, int slot) : ICallSlot
    {
        private readonly H2Stream _stream = new();
        private readonly Workbench _bench = engine._bench;

        public async ValueTask<CallResult> CallAsync(long k, CancellationToken cancel)
        {
            var sign = _bench.IsSign(k);
            var algorithm = sign ? _bench.Algorithm(slot, k) : SignatureAlgorithm.Unspecified;
            var offset = Workbench.Offset(slot, k);
            var request = sign
                ? engine._signRequests?[(int)algorithm][offset] ?? SignRequest(algorithm, _bench.Payload(slot, k))
                : engine._echoRequests?[offset] ?? EchoRequest(_bench.Payload(slot, k));

            using (cancel.UnsafeRegister(static s => ((UnarySlot)s!).Abandon(), this))
            {
                await connection.OpenAsync(_stream, sign ? SignPath : UnaryPath, request, cancel);
                await _stream.WaitAsync(forEnd: true);
            }
            var message = TakeOnlyMessage(_stream);
            return sign ? CheckSign(_bench, message, algorithm, slot, k) : CheckEcho(_bench, message, slot, k);
        }

        private void Abandon() => _stream.Connection?.Cancel(_stream, new OperationCanceledException("call abandoned"));

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>One bidirectional stream per slot, used as ping-pong; reopened after a failure.</summary>
    private sealed class StreamSlot(LeanEngine engine, ReconnectingConnection connection, int slot) : ICallSlot
    {
        private H2Stream _stream = new();
        private bool _broken = true; // no stream open

        public async ValueTask OpenAsync(CancellationToken cancel)
        {
            await connection.OpenAsync(_stream, StreamPath, null, cancel);
            _broken = false;
        }

        public async ValueTask<CallResult> CallAsync(long k, CancellationToken cancel)
        {
            if (!_broken && !_stream.Connection!.AcceptsNewStreams)
            {
                // The server is closing this connection: end the stream between two messages and
                // go on over the new connection, before a grace period cuts a call short. A new
                // stream object, since the old one still hears its trailers on the old connection.
                _stream.Connection.EndStream(_stream);
                _stream = new H2Stream();
                _broken = true;
            }
            if (_broken) await OpenAsync(cancel);
            var request = engine._echoRequests?[Workbench.Offset(slot, k)] ?? EchoRequest(engine._bench.Payload(slot, k));
            var h2 = _stream.Connection!;
            try
            {
                using (cancel.UnsafeRegister(static s => ((StreamSlot)s!).Abandon(), this))
                {
                    if (!h2.TrySendNow(_stream, request)) await h2.SendAsync(_stream, request, end: false, cancel);
                    await _stream.WaitAsync(forEnd: false);
                }
                if (_stream.TryTakeMessage(out var message)) return CheckEcho(engine._bench, message, slot, k);
                if (_stream.Error is { } error) throw error as CallFailedException ?? new CallFailedException(Kind(error), error.Message, error);
                CheckStatus(_stream);
                throw new CallFailedException("stream ended", $"the server ended stream {slot} before echoing request {k}");
            }
            catch (Exception e)
            {
                // Reset a stream still open (a wrong echo, say): it would hold one of the
                // server's streams, and its late frames would reach the reopened stream.
                _broken = true;
                h2.Cancel(_stream, e);
                throw;
            }
        }

        private void Abandon() => _stream.Connection?.Cancel(_stream, new OperationCanceledException("call abandoned"));

        public async ValueTask DisposeAsync()
        {
            if (_broken) return;
            _stream.Connection!.EndStream(_stream);
            // Give the server a moment to finish the stream cleanly; a slow one is simply left.
            await _stream.WaitAsync(forEnd: true).AsTask().WaitAsync(TimeSpan.FromSeconds(1)).ContinueWith(_ => { });
        }
    }

    /// <summary>A slot with one message in flight on a stream it shares with others.</summary>
    private sealed class PipelinedSlot(LeanEngine engine, SharedStream shared, int slot) : ICallSlot
    {
        private readonly PendingReply _reply = new();

        public async ValueTask<CallResult> CallAsync(long k, CancellationToken cancel)
        {
            var request = engine._echoRequests?[Workbench.Offset(slot, k)] ?? EchoRequest(engine._bench.Payload(slot, k));
            using (cancel.UnsafeRegister(static s => ((SharedStream)s!).Abandon(), shared))
            {
                await shared.SendAsync(_reply, request, cancel);
                await _reply.WaitAsync();
            }
            if (_reply.Error is { } error) throw error as CallFailedException ?? new CallFailedException(Kind(error), error.Message, error);
            return CheckEcho(engine._bench, _reply.Message, slot, k);
        }

        public ValueTask DisposeAsync()
        {
            shared.Close();
            return ValueTask.CompletedTask;
        }
    }

    private static CallResult CheckEcho(Workbench bench, ReadOnlySpan<byte> message, int slot, long k)
    {
        var reply = Wire.ReadReply(message, EchoReply.PayloadFieldNumber, EchoReply.ServerReceiveUnixNsFieldNumber, enumField: 0);
        return new CallResult(bench.CheckEcho(reply.Bytes, slot, k), reply.Timestamp, SignatureAlgorithm.Unspecified);
    }

    private static CallResult CheckSign(Workbench bench, ReadOnlySpan<byte> message, SignatureAlgorithm algorithm, int slot, long k)
    {
        var reply = Wire.ReadReply(message, SignReply.SignatureFieldNumber, SignReply.ServerReceiveUnixNsFieldNumber, SignReply.AlgorithmFieldNumber);
        bench.CheckSignature(algorithm, (SignatureAlgorithm)reply.Enum, bench.Payload(slot, k).Span, reply.Bytes, slot, k);
        return new CallResult(0, reply.Timestamp, algorithm);
    }
}
