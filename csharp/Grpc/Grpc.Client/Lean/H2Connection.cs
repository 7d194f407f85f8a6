using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace GrpcBench.Client.Lean;

/// <summary>
/// A minimal HTTP/2 client connection (RFC 9113) for gRPC over prior-knowledge h2c: unary and
/// bidirectional streaming calls with flow control, concurrency limits, SETTINGS changes at any
/// time, PING, GOAWAY and RST_STREAM; no TLS, no push, no priorities.
/// </summary>
/// <remarks>
/// Every writer appends its frames to one pending buffer under a lock; one flush at a time
/// sends everything pending in a single send. With the reader completing calls inline, a whole
/// batch of answers turns into a whole batch of new requests and one syscall: this, not any
/// single trick, is what makes it several times cheaper per call than SocketsHttpHandler.
///
/// Whatever the server sends, a call ends as a result or a failure with a reason: a stream
/// error (RFC 9113 section 5.4.2) fails its call and resets its stream; a connection error
/// (an <see cref="H2Exception"/>) sends GOAWAY, fails every call on the connection and closes it.
/// After the server's GOAWAY the connection takes no new streams but carries on for those the
/// server kept (PING, WINDOW_UPDATE, their requests), and closes itself once they are done.
/// </remarks>
sealed class H2Connection : IAsyncDisposable
{
    private const byte EndStreamFlag = 0x1, AckFlag = 0x1, EndHeadersFlag = 0x4, PaddedFlag = 0x8, PriorityFlag = 0x20;
    private const int MaxWindow = int.MaxValue;
    private const int ReplenishAt = 1 << 30;
    // We never raise SETTINGS_MAX_FRAME_SIZE, so the server's frames stay within the default.
    private const int MaxFrameSize = 16_384;
    // We advertise no SETTINGS_MAX_HEADER_LIST_SIZE; this bound makes an endless run of
    // CONTINUATION frames a failure rather than unbounded memory.
    private const int MaxHeaderBlock = 1 << 20;
    private static readonly byte[] Preface = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    private readonly Socket _socket;
    private readonly object _lock = new();
    private ByteWriter _pending = new(64 << 10);
    private ByteWriter _sending = new(64 << 10);
    private bool _flushing;
    private bool _reading; // the reader is handling a batch of frames, and flushes what they brought at its end
    private int _nextStreamId = 1;
    private int _active; // streams counted against the server's MAX_CONCURRENT_STREAMS
    private readonly Dictionary<int, H2Stream> _streams = new();
    private readonly LinkedQueue<TaskCompletionSource<bool>> _waiters = new();
    private long _connectionSendWindow = 65_535;
    private int _peerInitialWindow = 65_535;
    private int _peerMaxFrame = 16_384;
    private int _peerMaxStreams = int.MaxValue;
    private TaskCompletionSource _capacity = NewSignal(); // completed when a send window opens
    private readonly TaskCompletionSource _settingsReceived = NewSignal();
    private readonly HpackEncoder _encoder;
    private readonly HpackDecoder _decoder = new();
    private string? _goAway;   // the server's GOAWAY, once it came: no new streams
    private Exception? _dead;  // why the connection is over: nothing more is sent or read
    private long _receiveUnacked;
    private Task? _reader;

    // A header block that continues in CONTINUATION frames (reader only).
    private readonly ByteWriter _headerBlock = new(4096);
    private int _blockStream;       // 0 when no block is open
    private bool _blockEndsStream;

    public H2Connection(Socket socket, string authority)
    {
        _socket = socket;
        _encoder = new HpackEncoder(authority);
    }

    public int MaxConcurrentStreams => _peerMaxStreams;

    /// <summary>False once the server sent GOAWAY or the connection is gone: new calls go elsewhere.</summary>
    public bool AcceptsNewStreams => Volatile.Read(ref _goAway) is null && Volatile.Read(ref _dead) is null;

    /// <summary>True once the connection is over (lost, broken, or drained after GOAWAY).</summary>
    public bool IsClosed => Volatile.Read(ref _dead) is not null;

    /// <summary>Sends the preface and our settings, and waits for the server's settings.</summary>
    public async Task StartAsync(CancellationToken cancel)
    {
        lock (_lock)
        {
            _pending.Bytes(Preface);
            // Our receive windows are as large as HTTP/2 allows; we read everything at once anyway.
            var settings = WriteFrameHeader(12, FrameType.Settings, 0, 0);
            BinaryPrimitives.WriteUInt16BigEndian(settings, (ushort)Setting.EnablePush);
            BinaryPrimitives.WriteUInt32BigEndian(settings[2..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(settings[6..], (ushort)Setting.InitialWindowSize);
            BinaryPrimitives.WriteUInt32BigEndian(settings[8..], MaxWindow);
            WriteWindowUpdate(0, MaxWindow - 65_535);
        }
        ScheduleFlush();
        _reader = Task.Run(ReadLoopAsync);
        await _settingsReceived.Task.WaitAsync(cancel);
    }

    /// <summary>
    /// Opens a stream for a call; with <paramref name="message"/>, also sends it (a unary request).
    /// Throws <see cref="NoNewStreamsException"/> when the connection takes no new streams.
    /// </summary>
    public async ValueTask OpenAsync(H2Stream stream, string path, ReadOnlyMemory<byte>? message, CancellationToken cancel)
    {
        var granted = false; // a stream slot handed over by a finishing stream
        while (true)
        {
            TaskCompletionSource<bool> turn;
            lock (_lock)
            {
                if (_dead is not null || _goAway is not null)
                {
                    if (granted) _active--;
                    throw new NoNewStreamsException(_dead is not null ? "connection lost: " + _dead.Message : _goAway!);
                }
                // Checked under the lock, so a cancellation that came before the stream is
                // registered is never lost (the abandon callback would find no stream to reset).
                if (cancel.IsCancellationRequested)
                {
                    if (granted) ReleaseStreamSlot();
                    cancel.ThrowIfCancellationRequested();
                }
                if (granted || _active < _peerMaxStreams)
                {
                    if (!granted) _active++;
                    var id = _nextStreamId;
                    if (id < 0) throw new NoNewStreamsException("stream ids exhausted on this connection");
                    Volatile.Write(ref _nextStreamId, id + 2);
                    stream.Reset(this, id, _peerInitialWindow);
                    _streams[id] = stream;
                    var before = _pending.Length;
                    _pending.Reserve(9);
                    _encoder.EncodeRequest(path, _pending);
                    WriteHeaderAt(before, _pending.Length - before - 9, FrameType.Headers, EndHeadersFlag, id);
                    if (message is { } m && m.Length + 5 <= Math.Min(_connectionSendWindow, stream.SendWindow) && m.Length + 5 <= _peerMaxFrame)
                    {
                        AppendMessage(stream, m.Span, end: true); // the common case: one HEADERS, one DATA, one lock
                        message = null;
                    }
                    break;
                }
                // All the server's streams are busy: wait in line. First come, first served, so
                // no call starves while others keep winning the race for a freed stream.
                turn = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Enqueue(turn);
            }
            try
            {
                granted = await turn.Task.WaitAsync(cancel);
            }
            catch (OperationCanceledException)
            {
                lock (_lock)
                {
                    // Still in line: leave it. Already handed a stream: pass it on.
                    if (!_waiters.Remove(turn) && turn.Task.IsCompletedSuccessfully && turn.Task.Result) ReleaseStreamSlot();
                }
                throw;
            }
        }
        ScheduleFlush();
        if (message is { } rest) await SendAsync(stream, rest, end: true, cancel);
    }

    /// <summary>A stream ended: free its slot and hand free slots to the calls in line (under the lock).</summary>
    private void ReleaseStreamSlot()
    {
        Debug.Assert(Monitor.IsEntered(_lock));
        _active--;
        GrantWaiting();
    }

    /// <summary>Hands every slot the server's limit allows to the calls in line, first come first (under the lock).</summary>
    private void GrantWaiting()
    {
        Debug.Assert(Monitor.IsEntered(_lock));
        while (_active < _peerMaxStreams && _waiters.TryDequeue(out var next))
            if (next.TrySetResult(true)) _active++;
    }

    /// <summary>Sends one gRPC message on an open stream, waiting for flow-control credit as needed.</summary>
    public async ValueTask SendAsync(H2Stream stream, ReadOnlyMemory<byte> message, bool end, CancellationToken cancel)
    {
        var framed = new byte[message.Length + 5]; // the slow path (large message or closed window) may allocate
        BinaryPrimitives.WriteInt32BigEndian(framed.AsSpan(1), message.Length);
        message.Span.CopyTo(framed.AsSpan(5));
        var left = framed.AsMemory();
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                if (_dead is not null) throw new IOException("connection lost: " + _dead.Message, _dead);
                if (stream.Error is not null) throw stream.Error;
                // The server may answer before reading everything (a message over its size limit
                // ends the call with RESOURCE_EXHAUSTED): stop sending; the answer is on the stream.
                if (!Owns(stream)) break;
                var n = (int)Math.Max(0, Math.Min(Math.Min(left.Length, _peerMaxFrame), Math.Min(_connectionSendWindow, stream.SendWindow)));
                if (n > 0)
                {
                    var last = n == left.Length;
                    left.Span[..n].CopyTo(WriteFrameHeader(n, FrameType.Data, last && end ? EndStreamFlag : (byte)0, stream.Id));
                    _connectionSendWindow -= n;
                    stream.SendWindow -= n;
                    left = left[n..];
                    if (last) break;
                    continue;
                }
                wait = _capacity.Task;
            }
            ScheduleFlush();
            await wait.WaitAsync(cancel);
        }
        ScheduleFlush();
    }

    /// <summary>Half-closes our side of a stream (an empty DATA frame with END_STREAM).</summary>
    public void EndStream(H2Stream stream)
    {
        lock (_lock)
        {
            if (_dead is not null || !Owns(stream)) return;
            WriteFrameHeader(0, FrameType.Data, EndStreamFlag, stream.Id);
        }
        ScheduleFlush();
    }

    /// <summary>Sends a short message as one DATA frame (the caller checked windows and frame size).</summary>
    private void AppendMessage(H2Stream stream, ReadOnlySpan<byte> message, bool end)
    {
        var body = WriteFrameHeader(message.Length + 5, FrameType.Data, end ? EndStreamFlag : (byte)0, stream.Id);
        body[0] = 0; // not compressed
        BinaryPrimitives.WriteInt32BigEndian(body[1..], message.Length);
        message.CopyTo(body[5..]);
        _connectionSendWindow -= message.Length + 5;
        stream.SendWindow -= message.Length + 5;
    }

    /// <summary>Sends one short message when windows allow it at once; false means use <see cref="SendAsync"/>.</summary>
    public bool TrySendNow(H2Stream stream, ReadOnlySpan<byte> message)
    {
        lock (_lock)
        {
            if (_dead is not null || stream.Error is not null || !Owns(stream)) return false;
            if (message.Length + 5 > Math.Min(Math.Min(_connectionSendWindow, stream.SendWindow), _peerMaxFrame)) return false;
            AppendMessage(stream, message, end: false);
        }
        ScheduleFlush();
        return true;
    }

    /// <summary>Abandons a call: RST_STREAM(CANCEL) to the server, the error to the waiter.</summary>
    public void Cancel(H2Stream stream, Exception error) => Reset(stream, Http2Error.Cancel, error);

    /// <summary>Ends a stream from our side: RST_STREAM with <paramref name="code"/>, and the call fails with <paramref name="error"/>.</summary>
    private void Reset(H2Stream stream, Http2Error code, Exception error)
    {
        var drained = false;
        lock (_lock)
        {
            if (Owns(stream))
            {
                drained = Forget(stream);
                if (_dead is null) BinaryPrimitives.WriteUInt32BigEndian(WriteFrameHeader(4, FrameType.RstStream, 0, stream.Id), (uint)code);
            }
        }
        stream.Fail(error);
        ScheduleFlush();
        if (drained) CloseDrained();
    }

    /// <summary>Whether <paramref name="stream"/> is open here (a slot's stream object moves between connections).</summary>
    private bool Owns(H2Stream stream) => _streams.TryGetValue(stream.Id, out var open) && open == stream;

    /// <summary>
    /// Removes an open stream and frees its slot (under the lock); true when that was the last
    /// stream of a connection the server is closing, which the caller then closes.
    /// </summary>
    private bool Forget(H2Stream stream)
    {
        Debug.Assert(Monitor.IsEntered(_lock));
        _streams.Remove(stream.Id);
        ReleaseStreamSlot();
        Signal(); // a sender waiting for this stream's window must see it gone
        return _goAway is not null && _streams.Count == 0;
    }

    private void CloseDrained() => Die(new IOException($"closed by the client after its last stream ({_goAway})"));

    private Span<byte> WriteFrameHeader(int length, FrameType type, byte flags, int streamId)
    {
        var start = _pending.Length;
        _pending.Reserve(9);
        WriteHeaderAt(start, length, type, flags, streamId);
        return _pending.Reserve(length);
    }

    private void WriteHeaderAt(int at, int length, FrameType type, byte flags, int streamId)
    {
        var h = _pending.Buffer.AsSpan(at, 9);
        h[0] = (byte)(length >> 16);
        h[1] = (byte)(length >> 8);
        h[2] = (byte)length;
        h[3] = (byte)type;
        h[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(h[5..], streamId);
    }

    private void WriteWindowUpdate(int streamId, int increment) =>
        BinaryPrimitives.WriteInt32BigEndian(WriteFrameHeader(4, FrameType.WindowUpdate, 0, streamId), increment);

    // ---- writing: one flush at a time, everything pending in one send ----

    private void ScheduleFlush()
    {
        lock (_lock)
        {
            // A dead connection still flushes once: what is pending (our GOAWAY) goes out, then the socket closes.
            if (_flushing || (_pending.Length == 0 && _dead is null)) return;
            // Mid-batch, the reader flushes at the batch's end: every request the batch's answers
            // led to goes out in one send, from the reader's thread, with no thread to wake.
            if (_reading && _dead is null) return;
            _flushing = true;
        }
        // Queued, not run here: whoever appended goes on appending, and the flush picks up the lot.
        ThreadPool.UnsafeQueueUserWorkItem(static c => _ = c.FlushLoopAsync(), this, preferLocal: true);
    }

    /// <summary>The reader's end of a batch: sends what it brought, inline while the socket takes it at once.</summary>
    private void FlushReadBatch()
    {
        lock (_lock)
        {
            _reading = false;
            if (_flushing || _pending.Length == 0) return;
            _flushing = true;
        }
        _ = FlushLoopAsync();
    }

    private async Task FlushLoopAsync()
    {
        try
        {
            while (true)
            {
                lock (_lock)
                {
                    if (_pending.Length == 0)
                    {
                        _flushing = false;
                        if (_dead is null) return;
                        break;
                    }
                    (_pending, _sending) = (_sending, _pending);
                }
                var data = _sending.Buffer.AsMemory(0, _sending.Length);
                while (data.Length > 0) data = data[await _socket.SendAsync(data, SocketFlags.None)..];
                _sending.Length = 0;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            lock (_lock) _flushing = false;
            Die(e);
        }
        CloseSocket();
    }

    private void CloseSocket()
    {
        try { _socket.Shutdown(SocketShutdown.Both); }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        _socket.Dispose();
    }

    // ---- reading ----

    private async Task ReadLoopAsync()
    {
        // Frames are at most 9 + 16,384 bytes, so compacting is always enough to make room.
        var buffer = new byte[256 << 10];
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                if (end == buffer.Length)
                {
                    buffer.AsSpan(start, end - start).CopyTo(buffer);
                    (end, start) = (end - start, 0);
                }
                var n = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None);
                if (n == 0)
                {
                    var partial = end - start;
                    throw new IOException(partial == 0
                        ? "the server closed the connection"
                        : $"the server closed the connection in the middle of a frame ({partial} bytes of it arrived)");
                }
                end += n;
                lock (_lock) _reading = true;
                while (end - start >= 9)
                {
                    var length = buffer[start] << 16 | buffer[start + 1] << 8 | buffer[start + 2];
                    var type = (FrameType)buffer[start + 3];
                    var flags = buffer[start + 4];
                    var id = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start + 5)) & int.MaxValue;
                    // Checked on the header alone: a bad length must fail now, not wait for bytes that never come.
                    CheckFrame(type, flags, id, length);
                    if (end - start < 9 + length) break;
                    ReadOnlySpan<byte> payload = buffer.AsSpan(start + 9, length);
                    start += 9 + length;
                    OnFrame(type, flags, id, payload);
                }
                if (start == end) start = end = 0;
                if (_receiveUnacked >= ReplenishAt)
                {
                    lock (_lock) WriteWindowUpdate(0, (int)_receiveUnacked);
                    _receiveUnacked = 0;
                }
                FlushReadBatch();
            }
        }
        catch (Exception e)
        {
            lock (_lock) _reading = false;
            Die(e);
        }
    }

    /// <summary>The frame rules that need only the frame's header (RFC 9113 sections 4-6): a broken one is a connection error.</summary>
    private void CheckFrame(FrameType type, byte flags, int id, int length)
    {
        if (length > MaxFrameSize)
            throw new H2Exception(Http2Error.FrameSizeError, $"a {type.Name()} frame of {length} bytes, over the {MaxFrameSize}-byte SETTINGS_MAX_FRAME_SIZE");
        if (!_settingsReceived.Task.IsCompleted && type != FrameType.Settings)
            throw new H2Exception(Http2Error.ProtocolError, $"a {type.Name()} frame before the server's SETTINGS (the server preface)");
        if (_blockStream != 0 && (type != FrameType.Continuation || id != _blockStream))
            throw new H2Exception(Http2Error.ProtocolError, $"a {type.Name()} frame on stream {id} where the CONTINUATION of stream {_blockStream}'s header block belongs");
        switch (type)
        {
            case FrameType.Data or FrameType.Headers or FrameType.Priority or FrameType.RstStream or FrameType.Continuation when id == 0:
                throw new H2Exception(Http2Error.ProtocolError, $"a {type.Name()} frame on stream 0");
            case FrameType.Settings or FrameType.Ping or FrameType.GoAway when id != 0:
                throw new H2Exception(Http2Error.ProtocolError, $"a {type.Name()} frame on stream {id} (it belongs on stream 0)");
            case FrameType.Ping when length != 8:
                throw new H2Exception(Http2Error.FrameSizeError, $"a PING frame of {length} bytes (it has 8)");
            case FrameType.RstStream or FrameType.WindowUpdate when length != 4:
                throw new H2Exception(Http2Error.FrameSizeError, $"a {type.Name()} frame of {length} bytes (it has 4)");
            case FrameType.Settings when (flags & AckFlag) != 0 ? length != 0 : length % 6 != 0:
                throw new H2Exception(Http2Error.FrameSizeError, $"a SETTINGS frame of {length} bytes");
            case FrameType.GoAway when length < 8:
                throw new H2Exception(Http2Error.FrameSizeError, $"a GOAWAY frame of {length} bytes (at least 8)");
            case FrameType.PushPromise:
                throw new H2Exception(Http2Error.ProtocolError, "PUSH_PROMISE although push is disabled");
            case FrameType.Continuation when _blockStream == 0:
                throw new H2Exception(Http2Error.ProtocolError, $"a CONTINUATION frame on stream {id} with no header block open");
            case FrameType.Data or FrameType.Headers or FrameType.RstStream or FrameType.WindowUpdate when id != 0 && IsIdle(id):
                throw new H2Exception(Http2Error.ProtocolError, $"a {type.Name()} frame on stream {id}, which the client never opened");
        }
    }

    /// <summary>A stream the client has not opened (even ids are the server's, which never opens any here).</summary>
    private bool IsIdle(int id) => id % 2 == 0 || id >= Volatile.Read(ref _nextStreamId);

    private void OnFrame(FrameType type, byte flags, int id, ReadOnlySpan<byte> payload)
    {
        switch (type)
        {
            case FrameType.Data: OnData(id, flags, payload); break;
            case FrameType.Headers:
                payload = Unpad(type, payload, flags);
                if ((flags & PriorityFlag) != 0)
                {
                    if (payload.Length < 5) throw new H2Exception(Http2Error.FrameSizeError, $"a HEADERS frame too short for its priority fields ({payload.Length} bytes)");
                    payload = payload[5..];
                }
                _headerBlock.Length = 0;
                _blockStream = id;
                _blockEndsStream = (flags & EndStreamFlag) != 0;
                AppendHeaderBlock(payload, flags);
                break;
            case FrameType.Continuation: AppendHeaderBlock(payload, flags); break;
            case FrameType.RstStream:
                var code = (Http2Error)BinaryPrimitives.ReadUInt32BigEndian(payload);
                if (Finish(id) is { } reset)
                    reset.Fail(new CallFailedException(code == Http2Error.RefusedStream ? "refused" : "reset", $"the server reset stream {id} ({code})"));
                break;
            case FrameType.Settings: if ((flags & AckFlag) == 0) OnSettings(payload); break;
            case FrameType.Ping:
                if ((flags & AckFlag) == 0)
                {
                    lock (_lock)
                        if (_dead is null) payload.CopyTo(WriteFrameHeader(8, FrameType.Ping, AckFlag, 0));
                    ScheduleFlush();
                }
                break;
            case FrameType.GoAway: OnGoAway(payload); break;
            case FrameType.WindowUpdate: OnWindowUpdate(id, BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue); break;
        }
    }

    private static ReadOnlySpan<byte> Unpad(FrameType type, ReadOnlySpan<byte> payload, byte flags)
    {
        if ((flags & PaddedFlag) == 0) return payload;
        if (payload.Length == 0) throw new H2Exception(Http2Error.FrameSizeError, $"a padded {type.Name()} frame with no Pad Length");
        if (payload[0] >= payload.Length)
            throw new H2Exception(Http2Error.ProtocolError, $"a {type.Name()} frame padded by {payload[0]} bytes, but its payload is {payload.Length} bytes");
        return payload.Slice(1, payload.Length - 1 - payload[0]);
    }

    private void AppendHeaderBlock(ReadOnlySpan<byte> fragment, byte flags)
    {
        if (_headerBlock.Length + fragment.Length > MaxHeaderBlock)
            throw new H2Exception(Http2Error.ProtocolError, $"a header block over {MaxHeaderBlock} bytes on stream {_blockStream}");
        _headerBlock.Bytes(fragment);
        if ((flags & EndHeadersFlag) == 0) return;
        var id = _blockStream;
        _blockStream = 0;
        OnHeaderBlock(id, _blockEndsStream, _headerBlock.Buffer.AsSpan(0, _headerBlock.Length));
    }

    private void OnData(int id, byte flags, ReadOnlySpan<byte> payload)
    {
        _receiveUnacked += payload.Length; // padding included: flow control counts the whole payload
        var data = Unpad(FrameType.Data, payload, flags);
        var end = (flags & EndStreamFlag) != 0;
        H2Stream? stream;
        lock (_lock) _streams.TryGetValue(id, out stream);
        if (stream is null) return; // cancelled: the bytes still counted against the connection window
        if (!stream.HeadersReceived)
        {
            StreamError(stream, Http2Error.ProtocolError, "DATA before the response headers");
            return;
        }
        stream.ReceiveUnacked += payload.Length;
        if (stream.ReceiveUnacked >= ReplenishAt && !end)
        {
            lock (_lock) WriteWindowUpdate(id, (int)stream.ReceiveUnacked);
            stream.ReceiveUnacked = 0;
            ScheduleFlush();
        }
        if (end) Finish(id);
        stream.OnData(data, end);
    }

    private void OnHeaderBlock(int id, bool end, ReadOnlySpan<byte> block)
    {
        // Decode every block, even for a stream we dropped: the HPACK table must stay in step.
        var headers = _decoder.Decode(block);
        H2Stream? stream;
        lock (_lock) _streams.TryGetValue(id, out stream);
        if (stream is null) return;
        // gRPC's order (RFC 9113 section 8.1): headers with :status, messages, trailers that end the stream.
        if (!stream.HeadersReceived && headers.HttpStatus == 0)
        {
            StreamError(stream, Http2Error.ProtocolError, "response headers without :status");
            return;
        }
        if (stream.HeadersReceived && !end)
        {
            StreamError(stream, Http2Error.ProtocolError, "a second header block (trailers) without END_STREAM");
            return;
        }
        if (end) Finish(id);
        stream.OnHeaders(headers, end);
    }

    /// <summary>A stream error (RFC 9113 section 5.4.2): the stream is reset and its call fails; the connection goes on.</summary>
    private void StreamError(H2Stream stream, Http2Error code, string reason) =>
        Reset(stream, code, new CallFailedException("protocol", $"stream {stream.Id}: {reason} ({code})"));

    /// <summary>The server ended a stream: it leaves the table and frees its concurrency slot.</summary>
    private H2Stream? Finish(int id)
    {
        H2Stream? stream;
        bool drained;
        lock (_lock)
        {
            if (!_streams.TryGetValue(id, out stream)) return null;
            drained = Forget(stream);
        }
        if (drained) CloseDrained();
        return stream;
    }

    private void OnSettings(ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            for (var i = 0; i + 6 <= payload.Length; i += 6)
            {
                var value = BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 2)..]);
                switch ((Setting)BinaryPrimitives.ReadUInt16BigEndian(payload[i..]))
                {
                    case Setting.HeaderTableSize: _encoder.SetCapacity((int)Math.Min(value, int.MaxValue)); break;
                    case Setting.EnablePush when value > 1:
                        throw new H2Exception(Http2Error.ProtocolError, $"SETTINGS_ENABLE_PUSH of {value}");
                    case Setting.MaxConcurrentStreams: _peerMaxStreams = (int)Math.Min(value, int.MaxValue); break;
                    case Setting.InitialWindowSize:
                        if (value > MaxWindow) throw new H2Exception(Http2Error.FlowControlError, $"SETTINGS_INITIAL_WINDOW_SIZE of {value}, over 2^31-1");
                        // Applies to the open streams too, by the difference (RFC 9113 section 6.9.2); a window may go negative.
                        var delta = (long)value - _peerInitialWindow;
                        _peerInitialWindow = (int)value;
                        foreach (var s in _streams.Values)
                        {
                            s.SendWindow += delta;
                            if (s.SendWindow > MaxWindow) throw new H2Exception(Http2Error.FlowControlError, $"SETTINGS_INITIAL_WINDOW_SIZE of {value} overflows stream {s.Id}'s window");
                        }
                        break;
                    case Setting.MaxFrameSize:
                        if (value is < 16_384 or > 16_777_215) throw new H2Exception(Http2Error.ProtocolError, $"SETTINGS_MAX_FRAME_SIZE of {value}");
                        _peerMaxFrame = (int)value;
                        break;
                }
            }
            GrantWaiting(); // a raised stream limit lets calls in line go now
            WriteFrameHeader(0, FrameType.Settings, AckFlag, 0);
            Signal();
        }
        ScheduleFlush();
        _settingsReceived.TrySetResult();
    }

    private void OnWindowUpdate(int id, int increment)
    {
        H2Stream? stream = null;
        string? streamError = null;
        lock (_lock)
        {
            if (id == 0)
            {
                if (increment == 0) throw new H2Exception(Http2Error.ProtocolError, "a WINDOW_UPDATE of 0 on the connection");
                _connectionSendWindow += increment;
                if (_connectionSendWindow > MaxWindow) throw new H2Exception(Http2Error.FlowControlError, "a WINDOW_UPDATE takes the connection's window over 2^31-1");
            }
            else if (_streams.TryGetValue(id, out stream))
            {
                stream.SendWindow += increment;
                if (increment == 0) streamError = "a WINDOW_UPDATE of 0";
                else if (stream.SendWindow > MaxWindow) streamError = "a WINDOW_UPDATE takes the window over 2^31-1";
            }
            Signal();
        }
        if (streamError is not null)
            StreamError(stream!, increment == 0 ? Http2Error.ProtocolError : Http2Error.FlowControlError, streamError);
    }

    private void OnGoAway(ReadOnlySpan<byte> payload)
    {
        var last = BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue;
        var code = (Http2Error)BinaryPrimitives.ReadUInt32BigEndian(payload[4..]);
        var debug = Encoding.ASCII.GetString(payload[8..Math.Min(payload.Length, 8 + 200)]);
        var reason = $"the server sent GOAWAY ({code}, last stream {last}{(debug.Length > 0 ? ": " + debug : "")})";
        List<H2Stream> refused;
        bool drained;
        lock (_lock)
        {
            // No new streams from now on; those up to `last` may still finish, the others the
            // server never processed. A later GOAWAY can only lower `last`.
            Volatile.Write(ref _goAway, reason);
            while (_waiters.TryDequeue(out var w)) w.TrySetException(new NoNewStreamsException(reason));
            refused = _streams.Values.Where(s => s.Id > last).ToList();
            foreach (var s in refused) Forget(s);
            drained = _streams.Count == 0;
        }
        foreach (var s in refused) s.Fail(new CallFailedException("refused", $"the server did not process stream {s.Id}: {reason}"));
        if (drained) CloseDrained();
    }

    /// <summary>
    /// The connection is over: every open stream and waiting call fails with the reason, and the
    /// socket closes, after a GOAWAY that names our reason when the server broke the protocol.
    /// </summary>
    private void Die(Exception reason)
    {
        List<H2Stream> lost;
        lock (_lock)
        {
            if (_dead is not null) return;
            if (reason is H2Exception protocol) WriteGoAway(protocol.Code, protocol.Message);
            Volatile.Write(ref _dead, reason);
            lost = _streams.Values.ToList();
            _streams.Clear();
            _active = 0;
            var refused = new NoNewStreamsException("connection lost: " + reason.Message);
            while (_waiters.TryDequeue(out var w)) w.TrySetException(refused);
            Signal();
        }
        ScheduleFlush(); // sends our GOAWAY, if any, then closes the socket
        var after = _goAway is { } g ? $" (after {g})" : "";
        Exception error = reason is H2Exception h
            ? new CallFailedException("protocol", $"the server broke HTTP/2 ({h.Code}): {h.Message}; connection closed", h)
            : new IOException($"connection lost: {reason.Message}{after}", reason);
        foreach (var s in lost) s.Fail(error);
        _settingsReceived.TrySetException(error);
    }

    private void WriteGoAway(Http2Error code, string why)
    {
        // Last stream 0: the server opens none here. The debug data says what went wrong, for the server's log.
        var debug = Encoding.ASCII.GetBytes(why.Length > 200 ? why[..200] : why);
        var body = WriteFrameHeader(8 + debug.Length, FrameType.GoAway, 0, 0);
        BinaryPrimitives.WriteInt32BigEndian(body, 0);
        BinaryPrimitives.WriteUInt32BigEndian(body[4..], (uint)code);
        debug.CopyTo(body[8..]);
    }

    /// <summary>Wakes everyone waiting for capacity (called under the lock).</summary>
    private void Signal()
    {
        var old = _capacity;
        _capacity = NewSignal();
        old.TrySetResult();
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask DisposeAsync()
    {
        Die(new ObjectDisposedException("connection closed by the client"));
        CloseSocket();
        if (_reader is not null) await _reader;
    }
}

/// <summary>A FIFO queue that can also remove an item from the middle (a waiter that gave up).</summary>
sealed class LinkedQueue<T> where T : class
{
    private readonly LinkedList<T> _items = new();

    public void Enqueue(T item) => _items.AddLast(item);

    public bool Remove(T item) => _items.Remove(item);

    public bool TryDequeue(out T item)
    {
        if (_items.First is { } first)
        {
            _items.RemoveFirst();
            item = first.Value;
            return true;
        }
        item = null!;
        return false;
    }
}
