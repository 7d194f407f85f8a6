using System.Threading.Tasks.Sources;

namespace GrpcBench.Client.Lean;

/// <summary>
/// Several call slots pipelined on one bidirectional stream (`--stream-depth D`): each slot has
/// one message in flight, so the stream carries D at once and the server reads several per
/// receive. The server answers in order, so a FIFO of waiting slots pairs each reply with its
/// request (a mismatch would show as a wrong echo, never pass silently).
/// </summary>
sealed class SharedStream(ReconnectingConnection connection, string path)
{
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private Pipeline? _current;

    public async ValueTask SendAsync(PendingReply reply, byte[] request, CancellationToken cancel)
    {
        await _sendLock.WaitAsync(cancel);
        try
        {
            if (_current is { Broken: false } old && !old.Stream.Connection!.AcceptsNewStreams)
            {
                // The server is closing this connection: the calls on it finish there, the next
                // ones go on a new stream over the new connection.
                old.Stream.Connection.EndStream(old.Stream);
                _current = null;
            }
            if (_current is null || _current.Broken)
            {
                var pipeline = new Pipeline();
                await connection.OpenAsync(pipeline.Stream, path, null, cancel);
                _current = pipeline;
            }
            // Queue the waiter and send under the same lock, so queue order is wire order.
            reply.Reset();
            _current.Enqueue(reply);
            var h2 = _current.Stream.Connection!;
            if (!h2.TrySendNow(_current.Stream, request))
                await h2.SendAsync(_current.Stream, request, end: false, cancel);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>A call gave up: the stream is reset, and every call waiting on it fails.</summary>
    public void Abandon()
    {
        if (_current is { } p) p.Stream.Connection?.Cancel(p.Stream, new OperationCanceledException("call abandoned"));
    }

    public void Close()
    {
        if (_current is { Broken: false } p) p.Stream.Connection!.EndStream(p.Stream);
    }

    /// <summary>One opened stream and the calls waiting on it.</summary>
    private sealed class Pipeline : IMessageSink
    {
        private readonly Queue<PendingReply> _waiting = new();

        public Pipeline() => Stream = new H2Stream { Sink = this };

        public H2Stream Stream { get; }
        public volatile bool Broken;

        public void Enqueue(PendingReply reply)
        {
            lock (_waiting) _waiting.Enqueue(reply);
        }

        public void OnMessage(ReadOnlySpan<byte> message)
        {
            PendingReply? next;
            lock (_waiting) _waiting.TryDequeue(out next);
            next?.Complete(message, null);
        }

        public void OnEnd(Exception? error)
        {
            Broken = true; // the next call opens a new stream
            PendingReply[] lost;
            lock (_waiting)
            {
                lost = _waiting.ToArray();
                _waiting.Clear();
            }
            foreach (var reply in lost)
                reply.Complete(default, error ?? new CallFailedException("stream ended", "the server ended a stream before echoing every request"));
        }
    }
}

/// <summary>One slot's reply on a shared stream: the bytes (copied out of the stream) or the failure.</summary>
sealed class PendingReply : IValueTaskSource<bool>
{
    private ManualResetValueTaskSourceCore<bool> _core; // inline continuations, as for H2Stream
    private byte[] _buffer = new byte[256];

    public int Length { get; private set; }
    public Exception? Error { get; private set; }
    public ReadOnlySpan<byte> Message => _buffer.AsSpan(0, Length);

    public void Reset()
    {
        _core.Reset();
        Length = 0;
        Error = null;
    }

    public void Complete(ReadOnlySpan<byte> message, Exception? error)
    {
        if (message.Length > _buffer.Length) _buffer = new byte[message.Length];
        message.CopyTo(_buffer);
        Length = message.Length;
        Error = error;
        _core.SetResult(true);
    }

    public ValueTask<bool> WaitAsync() => new(this, _core.Version);

    bool IValueTaskSource<bool>.GetResult(short token) => _core.GetResult(token);
    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);
    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
