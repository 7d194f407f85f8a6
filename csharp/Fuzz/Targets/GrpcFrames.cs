using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;
using GrpcBench.Client;
using GrpcBench.Client.Lean;

namespace Fuzz.Targets;

/// <summary>
/// The lean engine's HTTP/2 frame reader (<see cref="H2Connection"/>, its HPACK decoder and the
/// streams' gRPC message framing), fed the input as everything a server sends after its first
/// SETTINGS, with two calls open: a streaming call on stream 1 whose replies go to a sink as
/// they arrive, and a unary call on stream 3 whose answer is read once the connection is over.
/// The read loop turns any exception into a dead connection, so the exceptions are watched as
/// they are thrown: only protocol, I/O and call errors are rejections. A connection still open
/// 10 s after the server's last byte is a hang.
/// </summary>
sealed class GrpcFrames() : FuzzTarget("grpc-frames", "H2Connection's read loop, the server sending the input")
{
    private const string StreamPath = "/bench.Echo/Stream", UnaryPath = "/bench.Echo/Unary";
    private const int PayloadField = 1, TimestampField = 2; // EchoReply's field numbers (bench.proto)
    private static readonly byte[] EmptySettings = Frame(FrameType.Settings, 0, 0, []);
    private static readonly byte[] Request = [0x0a, 3, (byte)'a', (byte)'b', (byte)'c']; // EchoRequest { payload = "abc" }

    private static readonly UnixDomainSocketEndPoint Endpoint = new($"\0fuzz-grpc-frames-{Environment.ProcessId}");
    private readonly Lazy<Socket> _listener = new(() =>
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Bind(Endpoint);
        s.Listen(4);
        return s;
    });

    protected override void Feed(ReadOnlySpan<byte> input)
    {
        var bytes = input.ToArray();
        using var watch = new SwallowedExceptions(IsRejection);
        ExchangeAsync(bytes).GetAwaiter().GetResult();
        watch.ThrowFirst();
    }

    private async Task ExchangeAsync(byte[] input)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var (connection, server, unary) = await OpenAsync(timeout.Token);
        using (server)
        {
            // Sent from another task: once the connection is over nobody reads, and a blocking send would wait forever.
            var sending = Task.Run(() =>
            {
                server.Send(input);
                server.Shutdown(SocketShutdown.Send);
            });
            try
            {
                // However the input ends, the connection closes its socket once it is over: read what it sends until then.
                var discard = new byte[64 << 10];
                while (await server.ReceiveAsync(discard, SocketFlags.None, timeout.Token) > 0) { }
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                throw new TimeoutException("the connection was still open 10 s after the server's last byte");
            }
            finally
            {
                await connection.DisposeAsync(); // also waits for the read loop to finish
            }
            await sending.ContinueWith(_ => { }); // fails when the connection closed before reading it all: expected
        }
        // What LeanEngine does with a finished unary call.
        if (unary.Error is null && unary.TryTakeMessage(out var message)) ReadReply(message);
    }

    /// <summary>
    /// A connection past the server's first SETTINGS with both calls open, before the first fuzzed
    /// byte is read, so every run starts from the same state. A failure here is the target's own,
    /// never a rejection.
    /// </summary>
    private async Task<(H2Connection, Socket Server, H2Stream Unary)> OpenAsync(CancellationToken cancel)
    {
        try
        {
            var listener = _listener.Value;
            var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            client.Connect(Endpoint);
            var server = listener.Accept();
            var connection = new H2Connection(client, "fuzz");
            server.Send(EmptySettings);
            await connection.StartAsync(cancel);
            await connection.OpenAsync(new H2Stream { Sink = new ReplyReader() }, StreamPath, null, cancel);
            var unary = new H2Stream();
            await connection.OpenAsync(unary, UnaryPath, Request, cancel);
            return (connection, server, unary);
        }
        catch (Exception e)
        {
            throw new InvalidOperationException("the fuzz target could not open its connection", e);
        }
    }

    private static void ReadReply(ReadOnlySpan<byte> message) => Wire.ReadReply(message, PayloadField, TimestampField, enumField: 0);

    /// <summary>A streaming call's replies, checked as the engine checks an echo.</summary>
    private sealed class ReplyReader : IMessageSink
    {
        public void OnMessage(ReadOnlySpan<byte> message) => ReadReply(message);
        public void OnEnd(Exception? error) { }
    }

    protected override bool IsRejection(Exception e) =>
        e is H2Exception or IOException or SocketException or ObjectDisposedException or OperationCanceledException or CallFailedException;

    public override IEnumerable<(string Name, byte[] Input)> Seeds
    {
        get
        {
            var settings = Frame(FrameType.Settings, 0, 0, [0, 3, 0, 0, 0, 100, 0, 4, 0, 0x10, 0, 0]); // MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 1 MiB
            var settingsAck = Frame(FrameType.Settings, Ack, 0, []);
            byte[] headers = [0x88, .. Literal(0x5f, null, "application/grpc")]; // :status 200 (static 8), content-type (static 31, indexed)
            byte[] trailers = [.. Literal(0x40, "grpc-status", "0")];
            var reply = Message([0x0a, 3, (byte)'a', (byte)'b', (byte)'c', 0x10, 0x7b]); // payload "abc", timestamp 123

            yield return ("unary-and-streaming", [
                .. settings, .. settingsAck, .. Frame(FrameType.WindowUpdate, 0, 0, [0, 1, 0, 0]),
                .. Frame(FrameType.Headers, EndHeaders, 1, headers), .. Frame(FrameType.Data, 0, 1, reply),
                .. Frame(FrameType.Headers, EndHeaders, 3, headers), .. Frame(FrameType.Data, 0, 3, reply),
                .. Frame(FrameType.Headers, EndHeaders | EndStream, 3, trailers),
                .. Frame(FrameType.Ping, 0, 0, [1, 2, 3, 4, 5, 6, 7, 8]),
                .. Frame(FrameType.Headers, EndHeaders | EndStream, 1, [.. Literal(0x40, "grpc-status", "0")])]);
            yield return ("continuation-padding-priority", [
                .. Frame(FrameType.Headers, Priority | Padded, 3, [2, 0, 0, 0, 0, 16, .. headers[..1], 0, 0]),
                .. Frame(FrameType.Continuation, EndHeaders, 3, headers[1..]),
                .. Frame(FrameType.Data, Padded | EndStream, 3, [1, .. reply, 0])]);
            yield return ("trailers-only-then-goaway", [
                .. Frame(FrameType.Headers, EndHeaders | EndStream, 3,
                    [0x88, .. Literal(0x40, "grpc-status", "14"), .. Literal(0x40, "grpc-message", "try%20again")]),
                .. Frame(FrameType.RstStream, 0, 1, [0, 0, 0, 8]),
                .. Frame(FrameType.GoAway, 0, 0, [0, 0, 0, 3, 0, 0, 0, 0])]);
            // RFC 7541 C.4.1: a Huffman-coded :authority (www.example.com).
            yield return ("huffman-header", [
                .. Frame(FrameType.Headers, EndHeaders, 3, [0x88, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff])]);
        }
    }

    private const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4, Padded = 0x8, Priority = 0x20;

    private static byte[] Frame(FrameType type, byte flags, int stream, byte[] payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = (byte)type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), stream);
        payload.CopyTo(frame, 9);
        return frame;
    }

    /// <summary>An HPACK literal: the first byte (with the name's static index, or 0x40 / 0x00 for a literal name), then the strings.</summary>
    private static byte[] Literal(byte first, string? name, string value) =>
        [first, .. name is null ? [] : String(name), .. String(value)];

    private static byte[] String(string s) => [(byte)s.Length, .. Encoding.ASCII.GetBytes(s)];

    /// <summary>A gRPC length-prefixed message, uncompressed.</summary>
    private static byte[] Message(byte[] m) => [0, (byte)(m.Length >> 24), (byte)(m.Length >> 16), (byte)(m.Length >> 8), (byte)m.Length, .. m];
}
