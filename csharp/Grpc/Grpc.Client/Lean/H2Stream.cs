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
    public long SendWindow;      // guarded by the connection's lock
    public long ReceiveUnacked;  // touched by the reader only
    public bool Ended;
    public ResponseHeaders Headers;
    public ResponseHeaders Trailers;
    public Exception? Error;

    /// <summary>Ready for a new call (a new stream id).</summary>
    public void Reset(int id, long sendWindow)
    {
        lock (this)
        {
            Id = id;
            SendWindow = sendWindow;
            ReceiveUnacked = 0;
            _read = _written = 0;
            Ended = false;
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
            // Only the reader appends, so a taken message stays valid while the sink copies it.
            while (TryTakeMessage(out var message)) sink.OnMessage(message);
            if (Ended) sink.OnEnd(null);
        }
    }

    /// <summary>
    /// Set for a stream that several calls share (pipelined streaming): every whole message goes
    /// to the sink as it arrives, instead of waiting for one awaiter.
    /// </summary>
    public IMessageSink? Sink;

    public void OnHeaders(ResponseHeaders headers, bool end)
    {
        bool wake;
        lock (this)
        {
            if (Headers.HttpStatus == 0 && !end) Headers = headers;
            else if (Headers.HttpStatus == 0) Headers = Trailers = headers; // trailers-only response
            else Trailers = headers;
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
            if (_buffer[_read] != 0) throw new H2Exception("compressed gRPC message (the client asked for none)");
            var length = BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_read + 1));
            message = _buffer.AsSpan(_read + 5, length);
            _read += 5 + length;
            return true;
        }
    }

    public bool HasLeftover { get { lock (this) return _written > _read; } }

    private bool HasMessage() =>
        _written - _read >= 5 && _written - _read >= 5 + BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_read + 1));

    bool IValueTaskSource<bool>.GetResult(short token) => _core.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);
    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
