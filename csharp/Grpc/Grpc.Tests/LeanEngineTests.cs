using System.Buffers.Binary;
using System.Net.Sockets;
using GrpcBench.Client;
using GrpcBench.Client.Lean;
using static GrpcBench.Tests.PeerConnection;

namespace GrpcBench.Tests;

/// <summary>
/// The lean engine against a scripted HTTP/2 server, frame by frame: what other servers do
/// (Huffman-coded headers, CONTINUATION, SETTINGS changes, GOAWAY, RST_STREAM) and what a broken
/// one might do. Every case ends in a result or a failed call with its reason, never a hang.
/// </summary>
public sealed class LeanEngineTests
{
    private static readonly TimeSpan Deadline = ScriptedPeer.Deadline;

    /// <summary>The engine with <paramref name="inFlight"/> call slots on one connection to <paramref name="peer"/>, which announced <paramref name="settings"/>.</summary>
    private static async Task<(LeanEngine Engine, PeerConnection Server)> StartAsync(ScriptedPeer peer, int inFlight = 1, params (Setting, uint)[] settings)
    {
        var options = ClientSettings.Parse(
            ["--port", peer.Port.ToString(), "--in-flight", inFlight.ToString(), "--connections", "1", "--payload", "8", "--timeout", "20"], _ => null);
        var engine = new LeanEngine(new Workbench(options));
        var accepted = peer.AcceptAsync(settings);
        await engine.StartAsync(CancellationToken.None).WaitAsync(Deadline);
        return (engine, await accepted);
    }

    private static async Task<ICallSlot[]> SlotsAsync(LeanEngine engine, int count)
    {
        var slots = new ICallSlot[count];
        for (var i = 0; i < count; i++) slots[i] = await engine.OpenSlotAsync(i, CancellationToken.None);
        return slots;
    }

    private static Task<CallResult> Call(ICallSlot slot, long k) => slot.CallAsync(k, CancellationToken.None).AsTask();

    private static async Task Succeeds(Task<CallResult> call) => Assert.Equal(8, (await call.WaitAsync(Deadline)).VerifiedBytes);

    private static async Task<CallFailedException> Fails(Task<CallResult> call, string kind, string reason)
    {
        var e = await Assert.ThrowsAsync<CallFailedException>(() => call.WaitAsync(Deadline));
        Assert.True(e.Kind == kind && e.Message.Contains(reason), $"expected {kind}: ...{reason}..., got {e.Kind}: {e.Message}");
        return e;
    }

    /// <summary>A PING round trip: everything the client wrote before it answered has arrived. Returns those frames.</summary>
    private static async Task<List<Frame>> RoundTripAsync(PeerConnection server, byte tag)
    {
        var seen = new List<Frame>();
        await server.SendAsync(Ping(tag));
        await server.ReadUntilAsync(f =>
        {
            seen.Add(f);
            return f.Type == FrameType.Ping && f.Has(Frame.Ack) && f.Payload[0] == tag;
        });
        return seen;
    }

    private static Task SettingsAcked(PeerConnection server) => server.ReadUntilAsync(f => f.Type == FrameType.Settings && f.Has(Frame.Ack));

    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    [Fact]
    public async Task Huffman_coded_response_headers_and_trailers_are_decoded_and_indexed()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var slot = (await SlotsAsync(engine, 1))[0];

        // Strings as nghttp2 codes them (content-type, grpc-status) and as RFC 7541 C.6.1 does
        // (cache-control, date); '0' is 00000 and three bits of padding. Three are indexed.
        byte[] headers =
        [
            0x88, 0x0F, 0x10, 0x8B, .. Hex("1d75d0620d263d4c4d6564"),
            0x58, 0x85, .. Hex("aec3771a4b"),
            0x61, 0x96, .. Hex("d07abe941054d444a8200595040b8166e082a62d1bff"),
        ];
        byte[] trailers = [0x40, 0x88, .. Hex("9acac8b21234da8f"), 0x81, 0x07];
        var call = Call(slot, 0);
        var request = await server.ReadRequestAsync();
        await server.SendAsync(Headers(request.Stream, headers), Message(request.Stream, request.Message), Headers(request.Stream, trailers, endStream: true));
        await Succeeds(call);

        // The next answer refers to the decoded entries: cache-control is 64, grpc-status: 0 is 62.
        call = Call(slot, 1);
        request = await server.ReadRequestAsync();
        await server.SendAsync(Headers(request.Stream, [0x88, 0xC0, .. OkHeaders[1..]]), Message(request.Stream, request.Message),
            Headers(request.Stream, [0xBE], endStream: true));
        await Succeeds(call);
    }

    [Fact]
    public async Task Header_blocks_split_over_CONTINUATION_frames_are_decoded_whole()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var call = Call((await SlotsAsync(engine, 1))[0], 0);
        var request = await server.ReadRequestAsync();
        var s = request.Stream;

        // Headers padded (4 bytes) and with priority fields (5), in three pieces; trailers in two.
        byte[] first = [4, 0, 0, 0, 0, 16, .. OkHeaders[..3], 0, 0, 0, 0];
        await server.SendAsync(
            Frame.Bytes(FrameType.Headers, Frame.Padded | Frame.Priority, s, first),
            Frame.Bytes(FrameType.Continuation, 0, s, OkHeaders[3..10]),
            Frame.Bytes(FrameType.Continuation, Frame.EndHeaders, s, OkHeaders[10..]),
            Message(s, request.Message),
            Frame.Bytes(FrameType.Headers, Frame.EndStream, s, OkTrailers[..5]),
            Frame.Bytes(FrameType.Continuation, Frame.EndHeaders, s, OkTrailers[5..]));
        await Succeeds(call);
    }

    [Fact]
    public async Task MAX_CONCURRENT_STREAMS_lowered_holds_calls_back_and_raised_lets_them_go()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer, inFlight: 4, (Setting.MaxConcurrentStreams, 10));
        await using var _ = engine;
        await using var __ = server;
        var slots = await SlotsAsync(engine, 4);
        var calls = new[] { Call(slots[0], 0), Call(slots[1], 0) };
        var open = new[] { await server.ReadRequestAsync(), await server.ReadRequestAsync() };

        // Lowered to 1 with two streams open: the two new calls wait, and when one stream
        // ends the other still fills the limit, so neither may start.
        await server.SendAsync(Settings((Setting.MaxConcurrentStreams, 1)));
        await SettingsAcked(server);
        calls = [.. calls, Call(slots[2], 0), Call(slots[3], 0)];
        await server.RespondAsync(open[0].Stream, open[0].Message);
        await Succeeds(calls[0]);
        Assert.DoesNotContain(await RoundTripAsync(server, 1), f => f.Type == FrameType.Headers);

        // Raised to 3: both waiting calls start at once, next to the stream still open.
        await server.SendAsync(Settings((Setting.MaxConcurrentStreams, 3)));
        var started = new[] { await server.ReadRequestAsync(), await server.ReadRequestAsync() };
        foreach (var r in started.Prepend(open[1])) await server.RespondAsync(r.Stream, r.Message);
        foreach (var c in calls[1..]) await Succeeds(c);
    }

    [Fact]
    public async Task INITIAL_WINDOW_SIZE_change_resizes_the_windows_of_open_streams()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer, 1, (Setting.InitialWindowSize, 0));
        await using var _ = engine;
        await using var __ = server;
        var call = Call((await SlotsAsync(engine, 1))[0], 0);

        // A window of 0: the request's HEADERS go out, its 15-byte message does not.
        var headers = await server.ReadUntilAsync(f => f.Type == FrameType.Headers);
        Assert.DoesNotContain(await RoundTripAsync(server, 1), f => f.Type == FrameType.Data);

        // 10 bytes of window for the open stream: 10 bytes of the message, then the rest on a WINDOW_UPDATE.
        await server.SendAsync(Settings((Setting.InitialWindowSize, 10)));
        var part = await server.ReadUntilAsync(f => f.Type == FrameType.Data);
        Assert.Equal(10, part.Payload.Length);
        Assert.False(part.Has(Frame.EndStream));
        await server.SendAsync(WindowUpdate(headers.Stream, 100));
        var request = await server.ReadRequestAsync();
        await server.RespondAsync(request.Stream, request.Message);
        await Succeeds(call);
    }

    [Fact]
    public async Task HEADER_TABLE_SIZE_change_is_signalled_by_a_table_size_update_in_the_next_request()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var slot = (await SlotsAsync(engine, 1))[0];
        var serverTable = new HpackDecoder(); // the server's view of the client's headers

        async Task<byte[]> CallAsync(long k)
        {
            var call = Call(slot, k);
            var request = await server.ReadRequestAsync();
            serverTable.Decode(request.HeaderBlock); // throws on an index the server's table lacks
            await server.RespondAsync(request.Stream, request.Message);
            await Succeeds(call);
            return request.HeaderBlock;
        }

        Assert.True((await CallAsync(0)).Length > 30); // headers inserted into the table
        Assert.True(serverTable.TableSize > 0);

        // Table size 0: the next block starts with an update to 0, and refers to no entry.
        await server.SendAsync(Settings((Setting.HeaderTableSize, 0)));
        await SettingsAcked(server);
        Assert.Equal(0x20, (await CallAsync(1))[0]);
        Assert.Equal(0, serverTable.TableSize);

        // Back to 4096: an update to 4096 (31 + 4065 in HPACK's integer), then the headers go in again.
        await server.SendAsync(Settings((Setting.HeaderTableSize, 4096)));
        await SettingsAcked(server);
        Assert.Equal(new byte[] { 0x3F, 0xE1, 0x1F }, (await CallAsync(2))[..3]);
        Assert.Equal(new byte[] { 0x83, 0x86, 0xC1, 0xC0, 0xBF, 0xBE }, await CallAsync(3));
    }

    [Fact]
    public async Task A_table_size_update_at_the_start_of_a_response_block_is_applied()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var slot = (await SlotsAsync(engine, 1))[0];
        var call = Call(slot, 0);
        var request = await server.ReadRequestAsync();
        // Two updates (0, then 256), then grpc-status: 0 inserted, and the next trailers refer to it.
        await server.SendAsync(Headers(request.Stream, [0x20, 0x3F, 0xE1, 0x01, .. OkHeaders]), Message(request.Stream, request.Message),
            Headers(request.Stream, [0x40, 11, .. "grpc-status"u8, 1, (byte)'0'], endStream: true));
        await Succeeds(call);
        call = Call(slot, 1);
        request = await server.ReadRequestAsync();
        await server.SendAsync(Headers(request.Stream, OkHeaders), Message(request.Stream, request.Message), Headers(request.Stream, [0xBE], endStream: true));
        await Succeeds(call);
    }

    [Fact]
    public async Task Graceful_GOAWAY_lets_the_calls_it_kept_finish_and_new_calls_go_to_a_new_connection()
    {
        using var peer = new ScriptedPeer();
        var (engine, old) = await StartAsync(peer, 2, (Setting.InitialWindowSize, 0));
        await using var _ = engine;
        await using var __ = old;
        var slots = await SlotsAsync(engine, 2);
        var calls = new[] { Call(slots[0], 0), Call(slots[1], 0) };
        var kept = new[] { await old.ReadUntilAsync(f => f.Type == FrameType.Headers), await old.ReadUntilAsync(f => f.Type == FrameType.Headers) };

        // GOAWAY keeping both streams, whose messages still wait for window: the client must
        // go on answering PINGs and send those messages once the window opens.
        await old.SendAsync(GoAway(kept[1].Stream, Http2Error.NoError, "draining"));
        await RoundTripAsync(old, 1);
        await old.SendAsync(Settings((Setting.InitialWindowSize, 65_535)));
        foreach (var _r in kept)
        {
            var request = await old.ReadRequestAsync();
            await old.RespondAsync(request.Stream, request.Message);
        }
        foreach (var c in calls) await Succeeds(c);

        // The next call opens a new connection; the old one, drained, is closed by the client.
        var next = Call(slots[0], 1);
        await using var fresh = await peer.AcceptAsync();
        var r = await fresh.ReadRequestAsync();
        Assert.Equal(1, r.Stream);
        await fresh.RespondAsync(r.Stream, r.Message);
        await Succeeds(next);
        Assert.DoesNotContain(await old.ReadToEndAsync(), f => f.Type == FrameType.Headers);
        Assert.Equal(1, engine.Reconnects);
    }

    [Fact]
    public async Task A_client_run_against_a_server_that_limits_connection_age_ends_with_only_successes()
    {
        using var peer = new ScriptedPeer();
        var connections = 0;
        var serving = new List<Task>();
        var accepting = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var connection = await peer.AcceptAsync();
                    Interlocked.Increment(ref connections);
                    lock (serving) serving.Add(ServeThenDrainAsync(connection, callsPerConnection: 10));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or TimeoutException) { } // the listener stopped
        });

        var run = await Programs.RunAsync(Programs.Client, "--port", peer.Port.ToString(), "--in-flight", "4", "--connections", "1",
            "--requests", "60", "--payload", "8", "--timeout", "10");
        peer.Dispose();
        await accepting;
        Task[] all;
        lock (serving) all = [.. serving];
        await Task.WhenAll(all).WaitAsync(Deadline);

        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal((60, 0), (run.Result()["ok"], run.Result()["failed"]));
        Assert.True(connections >= 3, $"{connections} connections for 60 calls at 10 per connection");
        Assert.Contains("new connection(s) replaced ones the server sent GOAWAY on", run.Stderr);
    }

    [Fact]
    public async Task A_server_gone_for_good_after_GOAWAY_fails_the_calls_and_the_run_still_ends()
    {
        using var peer = new ScriptedPeer();
        var serving = Task.Run(async () =>
        {
            await using var connection = await peer.AcceptAsync();
            peer.Dispose(); // nobody to reconnect to
            await connection.SendAsync(GoAway(0, Http2Error.NoError, "shutting down"));
            await connection.ReadToEndAsync();
        });
        var run = await Programs.RunAsync(Programs.Client, "--port", peer.Port.ToString(), "--in-flight", "2", "--connections", "1",
            "--requests", "6", "--timeout", "5");
        await serving.WaitAsync(Deadline);
        Assert.Equal(1, run.ExitCode);
        Assert.Equal((0, 6), (run.Result()["ok"], run.Result()["failed"]));
        Assert.Contains("connection: cannot open a new connection in place of one the server closed", run.Stderr);
    }

    /// <summary>
    /// Answers every request; after <paramref name="callsPerConnection"/> of them drains the
    /// connection as grpc-go and Kestrel do: GOAWAY with the largest stream id (no new streams),
    /// a PING, and once it comes back a GOAWAY with the last stream the client really opened.
    /// </summary>
    private static async Task ServeThenDrainAsync(PeerConnection connection, int callsPerConnection)
    {
        await using var _ = connection;
        int answered = 0, lastOpened = 0;
        while (await connection.ReadFrameOrEndAsync() is { } frame)
        {
            if (frame.Type == FrameType.Headers) lastOpened = Math.Max(lastOpened, frame.Stream);
            if (frame.Type == FrameType.Ping && frame.Has(Frame.Ack) && frame.Payload[0] == 42)
                await connection.SendAsync(GoAway(lastOpened, Http2Error.NoError, "max_age"));
            while (connection.TryTakeRequest(out var request))
            {
                await connection.RespondAsync(request.Stream, request.Message);
                if (++answered == callsPerConnection) await connection.SendAsync(GoAway(int.MaxValue, Http2Error.NoError), Ping(42));
            }
        }
    }

    [Fact]
    public async Task After_GOAWAY_a_ping_pong_stream_ends_between_messages_and_goes_on_over_a_new_connection()
    {
        using var peer = new ScriptedPeer();
        var options = ClientSettings.Parse(["--port", peer.Port.ToString(), "--in-flight", "1", "--connections", "1", "--payload", "8",
            "--workload", "grpc-stream"], _ => null);
        await using var engine = new LeanEngine(new Workbench(options));
        var accepted = peer.AcceptAsync();
        await engine.StartAsync(CancellationToken.None).WaitAsync(Deadline);
        await using var old = await accepted;
        var slot = (await SlotsAsync(engine, 1))[0];

        var call = Call(slot, 0);
        var data = await old.ReadUntilAsync(f => f.Type == FrameType.Data);
        await old.SendAsync(Headers(data.Stream, OkHeaders), Message(data.Stream, data.Payload[5..]));
        await Succeeds(call);
        await old.SendAsync(GoAway(data.Stream, Http2Error.NoError));
        await RoundTripAsync(old, 1);

        // The next message: the old stream is half-closed (an empty DATA with END_STREAM), a new one opens elsewhere.
        call = Call(slot, 1);
        var end = await old.ReadUntilAsync(f => f.Type == FrameType.Data);
        Assert.True(end.Stream == data.Stream && end.Has(Frame.EndStream) && end.Payload.Length == 0);
        await using var fresh = await peer.AcceptAsync();
        data = await fresh.ReadUntilAsync(f => f.Type == FrameType.Data);
        await fresh.SendAsync(Headers(data.Stream, OkHeaders), Message(data.Stream, data.Payload[5..]));
        await Succeeds(call);

        // The server ends the old stream; with nothing left on it the client closes that connection.
        await old.SendAsync(Headers(end.Stream, OkTrailers, endStream: true));
        Assert.DoesNotContain(await old.ReadToEndAsync(), f => f.Type is FrameType.Headers or FrameType.Data);
    }

    [Fact]
    public async Task Hard_GOAWAY_fails_the_calls_with_its_reason_and_the_next_call_reconnects()
    {
        using var peer = new ScriptedPeer();
        var (engine, old) = await StartAsync(peer, 2);
        await using var _ = engine;
        var slots = await SlotsAsync(engine, 2);
        var calls = new[] { Call(slots[0], 0), Call(slots[1], 0) };
        var requests = new[] { await old.ReadRequestAsync(), await old.ReadRequestAsync() };

        // The server keeps stream 1, refuses stream 3, and closes the connection at once.
        await old.SendAsync(GoAway(requests[0].Stream, Http2Error.EnhanceYourCalm, "too_many_pings"));
        await old.DisposeAsync();
        await Fails(calls[1], "refused", $"did not process stream {requests[1].Stream}: the server sent GOAWAY (EnhanceYourCalm, last stream 1: too_many_pings)");
        await Fails(calls[0], "connection", "the server closed the connection (after the server sent GOAWAY (EnhanceYourCalm");

        var next = Call(slots[1], 1);
        await using var fresh = await peer.AcceptAsync();
        var r = await fresh.ReadRequestAsync();
        await fresh.RespondAsync(r.Stream, r.Message);
        await Succeeds(next);
    }

    [Theory]
    [InlineData("InternalError", "reset")]
    [InlineData("Cancel", "reset")]
    [InlineData("RefusedStream", "refused")]
    public async Task RST_STREAM_fails_its_call_with_the_code_and_the_connection_goes_on(string error, string kind)
    {
        var code = Enum.Parse<Http2Error>(error);
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var slot = (await SlotsAsync(engine, 1))[0];
        var call = Call(slot, 0);
        var request = await server.ReadRequestAsync();
        await server.SendAsync(Headers(request.Stream, OkHeaders), RstStream(request.Stream, code));
        await Fails(call, kind, $"the server reset stream 1 ({code})");

        call = Call(slot, 1);
        request = await server.ReadRequestAsync();
        Assert.Equal(3, request.Stream);
        await server.RespondAsync(request.Stream, request.Message);
        await Succeeds(call);
    }

    [Fact]
    public async Task A_response_without_trailers_is_a_failed_call()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var call = Call((await SlotsAsync(engine, 1))[0], 0);
        var request = await server.ReadRequestAsync();
        await server.SendAsync(Headers(request.Stream, OkHeaders), Message(request.Stream, request.Message, endStream: true));
        await Fails(call, "missing trailers", "stream 1 ended without trailers (no grpc-status)");
    }

    [Fact]
    public async Task A_compressed_message_is_refused_clearly_and_the_connection_goes_on()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var slot = (await SlotsAsync(engine, 1))[0];
        var call = Call(slot, 0);
        var request = await server.ReadRequestAsync();
        await server.SendAsync(Headers(request.Stream, [.. OkHeaders, 0x00, 13, .. "grpc-encoding"u8, 4, .. "gzip"u8]),
            Message(request.Stream, request.Message, compressedFlag: 1), Headers(request.Stream, OkTrailers, endStream: true));
        await Fails(call, "compressed", "compressed message (flag 1, grpc-encoding gzip) although the client accepts only identity");

        call = Call(slot, 1);
        request = await server.ReadRequestAsync();
        await server.RespondAsync(request.Stream, request.Message);
        await Succeeds(call);
    }

    [Fact]
    public async Task A_compressed_message_on_a_shared_stream_fails_that_stream_only()
    {
        using var peer = new ScriptedPeer();
        var options = ClientSettings.Parse(["--port", peer.Port.ToString(), "--in-flight", "2", "--connections", "1", "--payload", "8",
            "--workload", "grpc-stream", "--stream-depth", "2"], _ => null);
        await using var engine = new LeanEngine(new Workbench(options));
        var accepted = peer.AcceptAsync();
        await engine.StartAsync(CancellationToken.None).WaitAsync(Deadline);
        await using var server = await accepted;
        var slots = await SlotsAsync(engine, 2);

        // Two calls pipelined on stream 1; the first reply is compressed, read by the connection's reader.
        var calls = new[] { Call(slots[0], 0), Call(slots[1], 0) };
        var stream = (await server.ReadUntilAsync(f => f.Type == FrameType.Data)).Stream;
        await server.ReadUntilAsync(f => f.Type == FrameType.Data);
        await server.SendAsync(Headers(stream, OkHeaders), Message(stream, [1, 2, 3], compressedFlag: 1));
        foreach (var c in calls) await Fails(c, "compressed", "grpc-encoding not given");
        Assert.Equal(Http2Error.Cancel, ResetCode(await server.ReadUntilAsync(f => f.Type == FrameType.RstStream)));

        // The connection is fine: the next call opens stream 3 on it and is answered.
        var next = Call(slots[0], 1);
        var data = await server.ReadUntilAsync(f => f.Type == FrameType.Data);
        Assert.Equal(3, data.Stream);
        await server.SendAsync(Headers(3, OkHeaders), Message(3, data.Payload[5..]));
        await Succeeds(next);
    }

    private static Http2Error ResetCode(Frame rst) => (Http2Error)BinaryPrimitives.ReadUInt32BigEndian(rst.Payload);

    /// <summary>Stream errors: the call fails with the reason, its stream is reset, the connection carries on.</summary>
    [Theory]
    [InlineData("DATA before HEADERS", "stream 1: DATA before the response headers (ProtocolError)")]
    [InlineData("HEADERS without :status", "stream 1: response headers without :status")]
    [InlineData("trailers without END_STREAM", "stream 1: a second header block (trailers) without END_STREAM")]
    [InlineData("WINDOW_UPDATE of 0 on a stream", "stream 1: a WINDOW_UPDATE of 0")]
    public async Task A_malformed_stream_fails_its_call_and_is_reset(string malformed, string reason)
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var slot = (await SlotsAsync(engine, 1))[0];
        var call = Call(slot, 0);
        var request = await server.ReadRequestAsync();
        var s = request.Stream;
        await server.SendAsync(malformed switch
        {
            "DATA before HEADERS" => [Message(s, request.Message)],
            "HEADERS without :status" => [Headers(s, OkHeaders[1..])],
            "trailers without END_STREAM" => [Headers(s, OkHeaders), Headers(s, OkTrailers)],
            "WINDOW_UPDATE of 0 on a stream" => [WindowUpdate(s, 0)],
            _ => throw new ArgumentException(malformed),
        });
        await Fails(call, "protocol", reason);
        var rst = await server.ReadUntilAsync(f => f.Type == FrameType.RstStream);
        Assert.Equal((s, Http2Error.ProtocolError), (rst.Stream, ResetCode(rst)));

        call = Call(slot, 1);
        request = await server.ReadRequestAsync();
        await server.RespondAsync(request.Stream, request.Message);
        await Succeeds(call);
    }

    public static TheoryData<string, string, string> ConnectionErrors => new()
    {
        { "oversized frame", "a DATA frame of 16385 bytes, over the 16384-byte SETTINGS_MAX_FRAME_SIZE", "FrameSizeError" },
        { "DATA padded past its end", "a DATA frame padded by 10 bytes, but its payload is 3 bytes", "ProtocolError" },
        { "HEADERS padded past its end", "a HEADERS frame padded by 200 bytes", "ProtocolError" },
        { "DATA on stream 0", "a DATA frame on stream 0", "ProtocolError" },
        { "HEADERS on stream 0", "a HEADERS frame on stream 0", "ProtocolError" },
        { "RST_STREAM on stream 0", "a RST_STREAM frame on stream 0", "ProtocolError" },
        { "SETTINGS on a stream", "a SETTINGS frame on stream 1 (it belongs on stream 0)", "ProtocolError" },
        { "PING of 7 bytes", "a PING frame of 7 bytes", "FrameSizeError" },
        { "RST_STREAM of 3 bytes", "a RST_STREAM frame of 3 bytes", "FrameSizeError" },
        { "WINDOW_UPDATE of 0 on the connection", "a WINDOW_UPDATE of 0 on the connection", "ProtocolError" },
        { "CONTINUATION with no HEADERS", "a CONTINUATION frame on stream 1 with no header block open", "ProtocolError" },
        { "PING inside a header block", "a PING frame on stream 0 where the CONTINUATION of stream 1's header block belongs", "ProtocolError" },
        { "HEADERS on a stream never opened", "a HEADERS frame on stream 99, which the client never opened", "ProtocolError" },
        { "PUSH_PROMISE", "PUSH_PROMISE although push is disabled", "ProtocolError" },
        { "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", "SETTINGS_INITIAL_WINDOW_SIZE of 2147483648", "FlowControlError" },
        { "SETTINGS_MAX_FRAME_SIZE under 16384", "SETTINGS_MAX_FRAME_SIZE of 100", "ProtocolError" },
        { "Huffman padding of zeros", "padding that is not all ones", "CompressionError" },
        { "HPACK string past its block", "HPACK string of 32 bytes beyond the end of its block", "CompressionError" },
        { "HPACK index past the table", "HPACK index 69 beyond the dynamic table", "CompressionError" },
        { "table size update after a field", "an HPACK dynamic table size update after a header field", "CompressionError" },
        { "table size update beyond our setting", "an HPACK dynamic table size update to 4097, beyond our 4096", "CompressionError" },
    };

    private static byte[][] Malformed(string name, int s) => name switch
    {
        "oversized frame" => [Frame.Bytes(FrameType.Data, 0, s, [], length: 16_385)], // the header alone is enough to tell
        "DATA padded past its end" => [Headers(s, OkHeaders), Frame.Bytes(FrameType.Data, Frame.Padded, s, [10, 1, 2])],
        "HEADERS padded past its end" => [Frame.Bytes(FrameType.Headers, Frame.EndHeaders | Frame.Padded, s, [200, 0x88])],
        "DATA on stream 0" => [Message(0, [1])],
        "HEADERS on stream 0" => [Headers(0, OkHeaders)],
        "RST_STREAM on stream 0" => [RstStream(0, Http2Error.Cancel)],
        "SETTINGS on a stream" => [Frame.Bytes(FrameType.Settings, 0, s, [])],
        "PING of 7 bytes" => [Frame.Bytes(FrameType.Ping, 0, 0, new byte[7])],
        "RST_STREAM of 3 bytes" => [Frame.Bytes(FrameType.RstStream, 0, s, [0, 0, 8])],
        "WINDOW_UPDATE of 0 on the connection" => [WindowUpdate(0, 0)],
        "CONTINUATION with no HEADERS" => [Frame.Bytes(FrameType.Continuation, Frame.EndHeaders, s, [0x88])],
        "PING inside a header block" => [Frame.Bytes(FrameType.Headers, 0, s, [0x88]), Ping(9)],
        "HEADERS on a stream never opened" => [Headers(99, OkHeaders)],
        "PUSH_PROMISE" => [Frame.Bytes(FrameType.PushPromise, Frame.EndHeaders, s, [0, 0, 0, 2, 0x88])],
        "SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1" => [Settings((Setting.InitialWindowSize, 1u << 31))],
        "SETTINGS_MAX_FRAME_SIZE under 16384" => [Settings((Setting.MaxFrameSize, 100))],
        "Huffman padding of zeros" => [Headers(s, [0x88, 0x0F, 0x10, 0x81, 0x00])],
        "HPACK string past its block" => [Headers(s, [0x88, 0x0F, 0x10, 0x20, (byte)'a'])],
        "HPACK index past the table" => [Headers(s, [0x88, 0xC5])],
        "table size update after a field" => [Headers(s, [0x88, 0x20])],
        "table size update beyond our setting" => [Headers(s, [0x3F, 0xE2, 0x1F, .. OkHeaders])],
        _ => throw new ArgumentException(name),
    };

    /// <summary>Connection errors: the call fails with the reason, the client sends GOAWAY with the code and closes, and the next call reconnects.</summary>
    [Theory]
    [MemberData(nameof(ConnectionErrors))]
    public async Task A_malformed_frame_fails_the_call_with_its_reason_and_ends_the_connection(string malformed, string reason, string code)
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        await using var __ = server;
        var slot = (await SlotsAsync(engine, 1))[0];
        var call = Call(slot, 0);
        var request = await server.ReadRequestAsync();
        await server.SendAsync(Malformed(malformed, request.Stream));
        await Fails(call, "protocol", reason);
        var goAway = Assert.Single(await server.ReadToEndAsync(), f => f.Type == FrameType.GoAway);
        Assert.Equal(code, ((Http2Error)BinaryPrimitives.ReadUInt32BigEndian(goAway.Payload.AsSpan(4))).ToString());

        var next = Call(slot, 1);
        await using var fresh = await peer.AcceptAsync();
        var r = await fresh.ReadRequestAsync();
        await fresh.RespondAsync(r.Stream, r.Message);
        await Succeeds(next);
    }

    [Fact]
    public async Task A_connection_closed_in_the_middle_of_a_frame_fails_the_call_with_that_reason()
    {
        using var peer = new ScriptedPeer();
        var (engine, server) = await StartAsync(peer);
        await using var _ = engine;
        var call = Call((await SlotsAsync(engine, 1))[0], 0);
        var request = await server.ReadRequestAsync();
        // A DATA frame announcing 100 bytes, of which 10 come before the close.
        await server.SendAsync(Headers(request.Stream, OkHeaders), Frame.Bytes(FrameType.Data, 0, request.Stream, new byte[10], length: 100));
        await server.DisposeAsync();
        await Fails(call, "connection", "the server closed the connection in the middle of a frame (19 bytes of it arrived)");
    }
}
