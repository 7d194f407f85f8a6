using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using GrpcBench.Client.Lean;

namespace GrpcBench.Tests;

/// <summary>One HTTP/2 frame as it crossed the wire.</summary>
internal sealed record Frame(FrameType Type, byte Flags, int Stream, byte[] Payload)
{
    public const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4, Padded = 0x8, Priority = 0x20;

    public bool Has(byte flag) => (Flags & flag) != 0;

    /// <summary>The frame's bytes: the 9-byte header (with <paramref name="length"/> if given, else the payload's) and the payload.</summary>
    public static byte[] Bytes(FrameType type, byte flags, int stream, ReadOnlySpan<byte> payload, int? length = null)
    {
        var bytes = new byte[9 + payload.Length];
        var n = length ?? payload.Length;
        (bytes[0], bytes[1], bytes[2]) = ((byte)(n >> 16), (byte)(n >> 8), (byte)n);
        bytes[3] = (byte)type;
        bytes[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(5), stream);
        payload.CopyTo(bytes.AsSpan(9));
        return bytes;
    }
}

/// <summary>A request as the peer received it: its stream, its header block and its one gRPC message (without the 5-byte prefix).</summary>
internal sealed record PeerRequest(int Stream, byte[] HeaderBlock, byte[] Message);

/// <summary>
/// A scripted HTTP/2 server for testing the lean engine frame by frame: a real TCP listener on
/// loopback; each test reads the client's frames and writes raw frames of its choosing,
/// well-formed or not. Every wait has a generous deadline, so a client that misbehaves fails
/// the test instead of hanging it.
/// </summary>
internal sealed class ScriptedPeer : IDisposable
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

    public ScriptedPeer() => _listener.Start();

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Accepts the client's next connection and completes the handshake, announcing <paramref name="settings"/>.</summary>
    public async Task<PeerConnection> AcceptAsync(params (Setting Id, uint Value)[] settings)
    {
        var connection = new PeerConnection(await _listener.AcceptSocketAsync().WaitAsync(Deadline));
        await connection.HandshakeAsync(settings);
        return connection;
    }

    public void Dispose() => _listener.Stop();
}

/// <summary>One accepted connection of a <see cref="ScriptedPeer"/>.</summary>
internal sealed class PeerConnection(Socket socket) : IAsyncDisposable
{
    /// <summary>:status 200 (static 8) and content-type: application/grpc (literal without indexing, static name 31).</summary>
    public static readonly byte[] OkHeaders = [0x88, 0x0F, 0x10, 16, .. "application/grpc"u8];

    /// <summary>grpc-status: 0 (literal without indexing, new name).</summary>
    public static readonly byte[] OkTrailers = [0x00, 11, .. "grpc-status"u8, 1, (byte)'0'];

    private readonly NetworkStream _stream = new(socket, ownsSocket: true);
    private readonly Dictionary<int, (List<byte> Block, List<byte> Body, bool HeadersDone)> _partial = new();
    private readonly Queue<PeerRequest> _complete = new();

    public async Task HandshakeAsync((Setting Id, uint Value)[] settings)
    {
        var preface = new byte[24];
        await _stream.ReadExactlyAsync(preface).AsTask().WaitAsync(ScriptedPeer.Deadline);
        Assert.Equal("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray(), preface);
        var clientSettings = await ReadFrameAsync();
        Assert.Equal(FrameType.Settings, clientSettings.Type);
        await SendAsync(Settings(settings), Frame.Bytes(FrameType.Settings, Frame.Ack, 0, []));
    }

    public static byte[] Settings(params (Setting Id, uint Value)[] settings)
    {
        var payload = new byte[6 * settings.Length];
        for (var i = 0; i < settings.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(6 * i), (ushort)settings[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(6 * i + 2), settings[i].Value);
        }
        return Frame.Bytes(FrameType.Settings, 0, 0, payload);
    }

    public static byte[] GoAway(int lastStream, Http2Error code, string debug = "")
    {
        var payload = new byte[8 + debug.Length];
        BinaryPrimitives.WriteInt32BigEndian(payload, lastStream);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4), (uint)code);
        System.Text.Encoding.ASCII.GetBytes(debug, payload.AsSpan(8));
        return Frame.Bytes(FrameType.GoAway, 0, 0, payload);
    }

    public static byte[] Ping(byte tag) => Frame.Bytes(FrameType.Ping, 0, 0, [tag, 0, 0, 0, 0, 0, 0, 0]);

    public static byte[] RstStream(int stream, Http2Error code)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)code);
        return Frame.Bytes(FrameType.RstStream, 0, stream, payload);
    }

    public static byte[] WindowUpdate(int stream, int increment)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(payload, increment);
        return Frame.Bytes(FrameType.WindowUpdate, 0, stream, payload);
    }

    public static byte[] Headers(int stream, byte[] block, bool endStream = false) =>
        Frame.Bytes(FrameType.Headers, (byte)(Frame.EndHeaders | (endStream ? Frame.EndStream : 0)), stream, block);

    /// <summary>A DATA frame carrying one gRPC message (flag byte, big-endian length, message).</summary>
    public static byte[] Message(int stream, byte[] message, byte compressedFlag = 0, bool endStream = false)
    {
        var payload = new byte[5 + message.Length];
        payload[0] = compressedFlag;
        BinaryPrimitives.WriteInt32BigEndian(payload.AsSpan(1), message.Length);
        message.CopyTo(payload, 5);
        return Frame.Bytes(FrameType.Data, endStream ? Frame.EndStream : (byte)0, stream, payload);
    }

    /// <summary>A whole successful answer: headers, the message, trailers with grpc-status 0.</summary>
    public Task RespondAsync(int stream, byte[] message) =>
        SendAsync(Headers(stream, OkHeaders), Message(stream, message), Headers(stream, OkTrailers, endStream: true));

    /// <summary>Writes frames in one go (so a test can make them arrive together).</summary>
    public async Task SendAsync(params byte[][] frames)
    {
        var all = frames.SelectMany(f => f).ToArray();
        await _stream.WriteAsync(all).AsTask().WaitAsync(ScriptedPeer.Deadline);
    }

    /// <summary>The next frame from the client; null when it closed the connection.</summary>
    public async Task<Frame?> ReadFrameOrEndAsync()
    {
        var header = new byte[9];
        int got;
        try
        {
            got = await _stream.ReadAtLeastAsync(header, 9, throwOnEndOfStream: false).AsTask().WaitAsync(ScriptedPeer.Deadline);
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionReset })
        {
            return null; // closed with our bytes unread: a reset instead of a FIN, the same end
        }
        if (got == 0) return null;
        Assert.Equal(9, got);
        var length = header[0] << 16 | header[1] << 8 | header[2];
        var payload = new byte[length];
        await _stream.ReadExactlyAsync(payload).AsTask().WaitAsync(ScriptedPeer.Deadline);
        var frame = new Frame((FrameType)header[3], header[4], BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & int.MaxValue, payload);
        Track(frame);
        return frame;
    }

    public async Task<Frame> ReadFrameAsync() =>
        await ReadFrameOrEndAsync() ?? throw new EndOfStreamException("the client closed the connection");

    /// <summary>Reads frames until one that <paramref name="wanted"/> accepts (everything read still counts toward requests).</summary>
    public async Task<Frame> ReadUntilAsync(Func<Frame, bool> wanted)
    {
        while (true)
        {
            var frame = await ReadFrameAsync();
            if (wanted(frame)) return frame;
        }
    }

    /// <summary>The next whole request (HEADERS, then DATA up to END_STREAM), in the order requests completed.</summary>
    public async Task<PeerRequest> ReadRequestAsync()
    {
        while (_complete.Count == 0) await ReadFrameAsync();
        return _complete.Dequeue();
    }

    /// <summary>A request that completed among the frames read so far, if any.</summary>
    public bool TryTakeRequest(out PeerRequest request) => _complete.TryDequeue(out request!);

    /// <summary>Reads until the client closes the connection; returns what it sent on the way (a GOAWAY, say).</summary>
    public async Task<List<Frame>> ReadToEndAsync()
    {
        var frames = new List<Frame>();
        while (await ReadFrameOrEndAsync() is { } frame) frames.Add(frame);
        return frames;
    }

    private void Track(Frame frame)
    {
        switch (frame.Type)
        {
            case FrameType.Headers:
                _partial[frame.Stream] = ([.. frame.Payload], [], frame.Has(Frame.EndHeaders));
                break;
            case FrameType.Continuation when _partial.TryGetValue(frame.Stream, out var p):
                p.Block.AddRange(frame.Payload);
                _partial[frame.Stream] = p with { HeadersDone = frame.Has(Frame.EndHeaders) };
                break;
            case FrameType.Data when _partial.TryGetValue(frame.Stream, out var p):
                p.Body.AddRange(frame.Payload);
                if (!frame.Has(Frame.EndStream)) break;
                _partial.Remove(frame.Stream);
                var body = p.Body.ToArray();
                Assert.Equal(0, body[0]); // the client never compresses
                Assert.Equal(body.Length - 5, BinaryPrimitives.ReadInt32BigEndian(body.AsSpan(1)));
                _complete.Enqueue(new PeerRequest(frame.Stream, [.. p.Block], body[5..]));
                break;
        }
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();
}
