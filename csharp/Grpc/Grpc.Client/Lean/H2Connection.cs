using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace GrpcBench.Client.Lean;

/// <summary>
/// A minimal HTTP/2 client connection (RFC 9113) for gRPC over prior-knowledge h2c: enough for
/// unary and bidirectional streaming calls with flow control, concurrency limits, PING, GOAWAY
/// and RST_STREAM, and nothing else (no TLS, no push, no priorities, no Huffman).
/// </summary>
/// <remarks>
/// Every writer appends its frames to one pending buffer under a lock; one flush at a time
/// sends everything pending in a single send. With the reader completing calls inline, a whole
/// batch of answers turns into a whole batch of new requests and one syscall: this, not any
/// single trick, is what makes it several times cheaper per call than SocketsHttpHandler.
/// </remarks>
sealed class H2Connection : IAsyncDisposable
{
    private const byte Data = 0, Headers = 1, RstStream = 3, Settings = 4, PushPromise = 5, Ping = 6, GoAway = 7, WindowUpdate = 8, Continuation = 9;
    private const byte EndStreamFlag = 0x1, Ack = 0x1, EndHeaders = 0x4, Padded = 0x8, Priority = 0x20;
    private const int MaxWindow = int.MaxValue;
    private const int ReplenishAt = 1 << 30;
    private static readonly byte[] Preface = Encoding.ASCII.GetBytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

    private readonly Socket _socket;
    private readonly object _lock = new();
    private ByteWriter _pending = new(64 << 10);
    private ByteWriter _sending = new(64 << 10);
    private bool _flushing;
    private int _nextStreamId = 1;
    private int _active;
    private readonly Dictionary<int, H2Stream> _streams = new();
    private long _connectionSendWindow = 65_535;
    private int _peerInitialWindow = 65_535;
    private int _peerMaxFrame = 16_384;
    private int _peerMaxStreams = int.MaxValue;
    private TaskCompletionSource _capacity = NewSignal(); // completed when a send window opens
    private readonly TaskCompletionSource _settingsReceived = NewSignal();
    private readonly HpackEncoder _encoder;
    private readonly HpackDecoder _decoder = new();
    private Exception? _dead;
    private long _receiveUnacked;
    private Task? _reader;

    public H2Connection(Socket socket, string authority)
    {
        _socket = socket;
        _encoder = new HpackEncoder(authority);
    }

    public int MaxConcurrentStreams => _peerMaxStreams;

    /// <summary>Sends the preface and our settings, and waits for the server's settings.</summary>
    public async Task StartAsync(CancellationToken cancel)
    {
        lock (_lock)
        {
            _pending.Bytes(Preface);
            // Our receive windows are as large as HTTP/2 allows; we read everything at once anyway.
            var settings = WriteFrameHeader(12, Settings, 0, 0);
            BinaryPrimitives.WriteUInt16BigEndian(settings, 2);   // ENABLE_PUSH
            BinaryPrimitives.WriteUInt32BigEndian(settings[2..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(settings[6..], 4); // INITIAL_WINDOW_SIZE
            BinaryPrimitives.WriteUInt32BigEndian(settings[8..], MaxWindow);
            WriteWindowUpdate(0, MaxWindow - 65_535);
        }
        ScheduleFlush();
        _reader = Task.Run(ReadLoopAsync);
        await _settingsReceived.Task.WaitAsync(cancel);
    }

    /// <summary>Opens a stream for a call; with <paramref name="message"/>, also sends it (a unary request).</summary>
    public async ValueTask OpenAsync(H2Stream stream, string path, ReadOnlyMemory<byte>? message, CancellationToken cancel)
    {
        var granted = false; // a stream slot handed over by a finishing stream
        while (true)
        {
            TaskCompletionSource<bool> turn;
            lock (_lock)
            {
                if (_dead is not null) throw new IOException("connection lost: " + _dead.Message, _dead);
                if (granted || _active < _peerMaxStreams)
                {
                    if (!granted) _active++;
                    var id = _nextStreamId;
                    if (id < 0) throw new IOException("stream ids exhausted on this connection");
                    _nextStreamId += 2;
                    stream.Reset(id, _peerInitialWindow);
                    _streams[id] = stream;
                    var before = _pending.Length;
                    _pending.Reserve(9);
                    _encoder.EncodeRequest(path, _pending);
                    WriteHeaderAt(before, _pending.Length - before - 9, Headers, EndHeaders, id);
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

    private readonly LinkedQueue<TaskCompletionSource<bool>> _waiters = new();

    /// <summary>A stream ended: hand its slot to the first call in line, or free it (under the lock).</summary>
    private void ReleaseStreamSlot()
    {
        while (_waiters.TryDequeue(out var next))
            if (next.TrySetResult(true)) return;
        _active--;
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
                if (!_streams.ContainsKey(stream.Id)) break;
                var n = (int)Math.Max(0, Math.Min(Math.Min(left.Length, _peerMaxFrame), Math.Min(_connectionSendWindow, stream.SendWindow)));
                if (n > 0)
                {
                    var last = n == left.Length;
                    left.Span[..n].CopyTo(WriteFrameHeader(n, Data, last && end ? EndStreamFlag : (byte)0, stream.Id));
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
            if (_dead is not null || !_streams.ContainsKey(stream.Id)) return;
            WriteFrameHeader(0, Data, EndStreamFlag, stream.Id);
        }
        ScheduleFlush();
    }

    /// <summary>Sends a short message as one DATA frame (the caller checked windows and frame size).</summary>
    private void AppendMessage(H2Stream stream, ReadOnlySpan<byte> message, bool end)
    {
        var body = WriteFrameHeader(message.Length + 5, Data, end ? EndStreamFlag : (byte)0, stream.Id);
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
            if (_dead is not null || stream.Error is not null) return false;
            if (message.Length + 5 > Math.Min(Math.Min(_connectionSendWindow, stream.SendWindow), _peerMaxFrame)) return false;
            AppendMessage(stream, message, end: false);
        }
        ScheduleFlush();
        return true;
    }

    /// <summary>Abandons a call: RST_STREAM(CANCEL) to the server, the error to the waiter.</summary>
    public void Cancel(H2Stream stream, Exception error)
    {
        lock (_lock)
        {
            if (_streams.Remove(stream.Id))
            {
                ReleaseStreamSlot();
                var span = WriteFrameHeader(4, RstStream, 0, stream.Id);
                BinaryPrimitives.WriteUInt32BigEndian(span, 8); // CANCEL
                Signal();
            }
        }
        stream.Fail(error);
        ScheduleFlush();
    }

    private Span<byte> WriteFrameHeader(int length, byte type, byte flags, int streamId)
    {
        var start = _pending.Length;
        _pending.Reserve(9);
        WriteHeaderAt(start, length, type, flags, streamId);
        return _pending.Reserve(length);
    }

    private void WriteHeaderAt(int at, int length, byte type, byte flags, int streamId)
    {
        var h = _pending.Buffer.AsSpan(at, 9);
        h[0] = (byte)(length >> 16);
        h[1] = (byte)(length >> 8);
        h[2] = (byte)length;
        h[3] = type;
        h[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(h[5..], streamId);
    }

    private void WriteWindowUpdate(int streamId, int increment) =>
        BinaryPrimitives.WriteInt32BigEndian(WriteFrameHeader(4, WindowUpdate, 0, streamId), increment);

    // ---- writing: one flush at a time, everything pending in one send ----

    private void ScheduleFlush()
    {
        lock (_lock)
        {
            if (_flushing || _pending.Length == 0) return;
            _flushing = true;
        }
        // Queued, not run here: whoever appended (often the reader, mid-batch) goes on appending,
        // and the flush picks up the whole batch.
        ThreadPool.UnsafeQueueUserWorkItem(static c => _ = c.FlushLoopAsync(), this, preferLocal: true);
    }

    private async Task FlushLoopAsync()
    {
        try
        {
            while (true)
            {
                lock (_lock)
                {
                    if (_pending.Length == 0 || _dead is not null)
                    {
                        _flushing = false;
                        return;
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
    }

    // ---- reading ----

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[256 << 10];
        int start = 0, end = 0;
        var headerBlock = new ByteWriter(4096);
        (int Stream, bool End) blockOwner = default;
        try
        {
            while (true)
            {
                if (end == buffer.Length)
                {
                    buffer.AsSpan(start, end - start).CopyTo(buffer);
                    (end, start) = (end - start, 0);
                    if (end == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
                }
                var n = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None);
                if (n == 0) throw new IOException("the server closed the connection");
                end += n;
                while (end - start >= 9)
                {
                    var length = buffer[start] << 16 | buffer[start + 1] << 8 | buffer[start + 2];
                    if (end - start < 9 + length) break;
                    var type = buffer[start + 3];
                    var flags = buffer[start + 4];
                    var id = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start + 5)) & int.MaxValue;
                    ReadOnlySpan<byte> payload = buffer.AsSpan(start + 9, length);
                    start += 9 + length;
                    switch (type)
                    {
                        case Data: OnData(id, flags, payload); break;
                        case Headers or Continuation:
                            if (type == Headers)
                            {
                                payload = Unpad(payload, flags);
                                if ((flags & Priority) != 0) payload = payload[5..];
                                headerBlock.Length = 0;
                                blockOwner = (id, (flags & EndStreamFlag) != 0);
                            }
                            headerBlock.Bytes(payload);
                            if ((flags & EndHeaders) != 0) OnHeaderBlock(blockOwner.Stream, blockOwner.End, headerBlock.Buffer.AsSpan(0, headerBlock.Length));
                            break;
                        case RstStream:
                            Finish(id)?.Fail(new IOException($"the server reset the stream (HTTP/2 error {BinaryPrimitives.ReadUInt32BigEndian(payload)})"));
                            break;
                        case Settings: if ((flags & Ack) == 0) OnSettings(payload); break;
                        case Ping:
                            if ((flags & Ack) == 0)
                            {
                                lock (_lock) payload.CopyTo(WriteFrameHeader(8, Ping, Ack, 0));
                                ScheduleFlush();
                            }
                            break;
                        case GoAway: OnGoAway(payload); break;
                        case WindowUpdate: OnWindowUpdate(id, BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue); break;
                        case PushPromise: throw new H2Exception("PUSH_PROMISE although push is disabled");
                    }
                }
                if (start == end) start = end = 0;
                if (_receiveUnacked >= ReplenishAt)
                {
                    lock (_lock) WriteWindowUpdate(0, (int)_receiveUnacked);
                    _receiveUnacked = 0;
                    ScheduleFlush();
                }
            }
        }
        catch (Exception e)
        {
            Die(e);
        }
    }

    private static ReadOnlySpan<byte> Unpad(ReadOnlySpan<byte> payload, byte flags) =>
        (flags & Padded) == 0 ? payload : payload.Slice(1, payload.Length - 1 - payload[0]);

    private void OnData(int id, byte flags, ReadOnlySpan<byte> payload)
    {
        _receiveUnacked += payload.Length;
        var end = (flags & EndStreamFlag) != 0;
        H2Stream? stream;
        lock (_lock) _streams.TryGetValue(id, out stream);
        if (stream is null) return; // cancelled: the bytes still counted against the connection window
        stream.ReceiveUnacked += payload.Length;
        if (stream.ReceiveUnacked >= ReplenishAt && !end)
        {
            lock (_lock) WriteWindowUpdate(id, (int)stream.ReceiveUnacked);
            stream.ReceiveUnacked = 0;
            ScheduleFlush();
        }
        if (end) Finish(id);
        stream.OnData(Unpad(payload, flags), end);
    }

    private void OnHeaderBlock(int id, bool end, ReadOnlySpan<byte> block)
    {
        // Decode every block, even for a stream we dropped: the HPACK table must stay in step.
        var headers = _decoder.Decode(block);
        H2Stream? stream;
        lock (_lock) _streams.TryGetValue(id, out stream);
        if (stream is null) return;
        if (end) Finish(id);
        stream.OnHeaders(headers, end);
    }

    /// <summary>Removes a finished stream and frees its concurrency slot.</summary>
    private H2Stream? Finish(int id)
    {
        lock (_lock)
        {
            if (!_streams.Remove(id, out var stream)) return null;
            ReleaseStreamSlot();
            Signal();
            return stream;
        }
    }

    private void OnSettings(ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            for (var i = 0; i + 6 <= payload.Length; i += 6)
            {
                var value = BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 2)..]);
                switch (BinaryPrimitives.ReadUInt16BigEndian(payload[i..]))
                {
                    case 1: _encoder.SetCapacity((int)Math.Min(value, int.MaxValue)); break;
                    case 3: _peerMaxStreams = (int)Math.Min(value, int.MaxValue); break;
                    case 4:
                        var delta = (long)value - _peerInitialWindow;
                        _peerInitialWindow = (int)value;
                        foreach (var s in _streams.Values) s.SendWindow += delta;
                        break;
                    case 5: _peerMaxFrame = (int)value; break;
                }
            }
            WriteFrameHeader(0, Settings, Ack, 0);
            Signal();
        }
        ScheduleFlush();
        _settingsReceived.TrySetResult();
    }

    private void OnWindowUpdate(int id, int increment)
    {
        lock (_lock)
        {
            if (id == 0) _connectionSendWindow += increment;
            else if (_streams.TryGetValue(id, out var s)) s.SendWindow += increment;
            Signal();
        }
    }

    private void OnGoAway(ReadOnlySpan<byte> payload)
    {
        var last = BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue;
        var code = BinaryPrimitives.ReadUInt32BigEndian(payload[4..]);
        var error = new IOException($"the server sent GOAWAY (HTTP/2 error {code}, last stream {last})");
        List<H2Stream> lost;
        lock (_lock)
        {
            _dead ??= error; // no new streams; those the server took may still finish
            lost = _streams.Where(p => p.Key > last).Select(p => p.Value).ToList();
            foreach (var s in lost) _streams.Remove(s.Id);
            FailWaiters(error);
            foreach (var _ in lost) ReleaseStreamSlot();
            Signal();
        }
        foreach (var s in lost) s.Fail(error);
    }

    private void Die(Exception e)
    {
        List<H2Stream> lost;
        lock (_lock)
        {
            _dead ??= e;
            lost = _streams.Values.ToList();
            _streams.Clear();
            FailWaiters(new IOException("connection lost: " + e.Message, e));
            Signal();
        }
        var error = new IOException("connection lost: " + e.Message, e);
        foreach (var s in lost) s.Fail(error);
        _settingsReceived.TrySetException(error);
    }

    private void FailWaiters(Exception error)
    {
        while (_waiters.TryDequeue(out var w)) w.TrySetException(error);
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
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
        _socket.Dispose();
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
