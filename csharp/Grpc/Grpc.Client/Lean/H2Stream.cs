using System.Buffers.Binary;
using System.Threading.Tasks.Sources;

namespace GrpcBench.Client.Lean;

/// <summary>Receives the messages of a shared stream, in order; then its end (with the error, if any).</summary>
interface IMessageSink
{
    void OnMessage(ReadOnlySpan<byte> message);
    void OnEnd(Exception? error);
}

/// <summary>
/// One HTTP/2 stream's receiving side, reused call after call by the slot that owns it: the
/// gRPC bytes that arrived, the headers and trailers, and one awaiter. The connection's reader
/// completes the awaiter inline (no thread-pool hop), so the slot's next request is written
/// while the reader is still handling the same batch of frames, and goes out in the same send.
/// </summary>
sealed class H2Stream : IValueTaskSource<bool>
{
    private ManualResetValueTaskSourceCore<bool> _core; // RunContinuationsAsynchronously = false: inline
    private byte[] _buffer = new byte[1024];
    private int _read, _written;
    private bool _waiting, _waitForEnd;

    public int Id;
    public H2Connection? Connection; // the one this stream was last opened on
    public long SendWindow;      // guarded by the connection's lock
    public long ReceiveUnacked;  // touched by the reader only
    public bool Ended;
    public bool HeadersReceived;
    public bool TrailersReceived;
    public ResponseHeaders Headers;
    public ResponseHeaders Trailers;
    public Exception? Error;

    /// <summary>Ready for a new call (a new stream id, on <paramref name="connection"/>).</summary>
    public void Reset(H2Connection connection, int id, long sendWindow)
    {
        lock (this)
        {
            Connection = connection;
            Id = id;
            SendWindow = sendWindow;
            ReceiveUnacked = 0;
            _read = _written = 0;
            Ended = false;
            HeadersReceived = TrailersReceived = false;
            Headers = default;
            Trailers = default;
            Error = null;
        }
    }

    // ---- reader side ----

    public void OnData(ReadOnlySpan<byte> data, bool end)
    {
        bool wake;
        lock (this)
        {
            if (_written + data.Length > _buffer.Length)
            {
                // Keep only what is unread, then grow if that is still not enough.
                _buffer.AsSpan(_read, _written - _read).CopyTo(_buffer);
                (_written, _read) = (_written - _read, 0);
                if (_written + data.Length > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _written + data.Length));
            }
            data.CopyTo(_buffer.AsSpan(_written));
            _written += data.Length;
            Ended |= end;
            wake = ShouldWake();
        }
        if (wake) _core.SetResult(true);
        if (Sink is { } sink)
        {
            try
            {
                // Only the reader appends, so a taken message stays valid while the sink copies it.
                while (TryTakeMessage(out var message)) sink.OnMessage(message);
            }
            catch (CallFailedException e)
            {
                Connection!.Cancel(this, e); // a message we cannot read: this stream is over, the connection is not
                return;
            }
            if (Ended) sink.OnEnd(null);
        }
    }

    /// <summary>
    /// Set for a stream that several calls share (pipelined streaming): every whole message goes
    /// to the sink as it arrives, instead of waiting for one awaiter.
    /// </summary>
    public IMessageSink? Sink;

    /// <summary>The response headers, the trailers, or both at once (a trailers-only response); the connection checked the order.</summary>
    public void OnHeaders(ResponseHeaders headers, bool end)
    {
        bool wake;
        lock (this)
        {
            if (!HeadersReceived)
            {
                Headers = headers;
                HeadersReceived = true;
            }
            if (end)
            {
                Trailers = headers;
                TrailersReceived = true;
            }
            Ended |= end;
            wake = ShouldWake();
        }
        if (wake) _core.SetResult(true);
        if (end) Sink?.OnEnd(null);
    }

    public void Fail(Exception error)
    {
        bool wake;
        lock (this)
        {
            if (Ended || Error is not null) return;
            Error = error;
            wake = ShouldWake();
        }
        if (wake) _core.SetResult(true);
        Sink?.OnEnd(error);
    }

    private bool ShouldWake()
    {
        if (!_waiting || !(Error is not null || Ended || (!_waitForEnd && HasMessage()))) return false;
        _waiting = false;
        return true;
    }

    // ---- slot side ----

    /// <summary>Waits for the end of the stream (unary), or for the next whole message (streaming).</summary>
    public ValueTask<bool> WaitAsync(bool forEnd)
    {
        lock (this)
        {
            _waitForEnd = forEnd;
            if (Error is not null || Ended || (!forEnd && HasMessage())) return new ValueTask<bool>(true);
            _core.Reset();
            _waiting = true;
            return new ValueTask<bool>(this, _core.Version);
        }
    }

    /// <summary>The next length-prefixed gRPC message, if a whole one has arrived.</summary>
    public bool TryTakeMessage(out ReadOnlySpan<byte> message)
    {
        lock (this)
        {
            message = default;
            if (!HasMessage()) return false;
            // We send no grpc-accept-encoding, so a conforming server never compresses (gRPC's
            // PROTOCOL-HTTP2.md); one that does is reported rather than decompressed.
            if (_buffer[_read] != 0)
                throw new CallFailedException("compressed",
                    $"the server sent a compressed message (flag {_buffer[_read]}, grpc-encoding {Headers.GrpcEncoding ?? "not given"}) although the client accepts only identity");
            if (MessageLength() > MaxMessage)
                throw new CallFailedException("bad response", $"a gRPC message length of {MessageLength()} bytes (at most {MaxMessage})");
            var length = (int)MessageLength();
            message = _buffer.AsSpan(_read + 5, length);
            _read += 5 + length;
            return true;
        }
    }

    public bool HasLeftover { get { lock (this) return _written > _read; } }

    // A length no buffer could hold counts as a message that arrived, so whoever waits wakes up
    // and TryTakeMessage reports it.
    private bool HasMessage() => _written - _read >= 5 && (MessageLength() > MaxMessage || _written - _read >= 5 + MessageLength());

    // A length the buffer could never hold is malformed, not a reason to wait for 4 GiB.
    private const long MaxMessage = int.MaxValue - 5;

    private long MessageLength() => BinaryPrimitives.ReadUInt32BigEndian(_buffer.AsSpan(_read + 1));

    bool IValueTaskSource<bool>.GetResult(short token) => _core.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);
    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
