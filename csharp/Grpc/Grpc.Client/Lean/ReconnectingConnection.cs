namespace GrpcBench.Client.Lean;

/// <summary>
/// One of the load's connections as the call slots see it: the current <see cref="H2Connection"/>,
/// replaced by a new one once the server sent GOAWAY (a drain, or a connection-age limit) or the
/// connection is gone. Calls already on the old connection finish there; new calls open on the
/// new one. One reconnect at a time, shared by every call that needs it.
/// </summary>
sealed class ReconnectingConnection(Func<CancellationToken, Task<H2Connection>> connect, TimeSpan connectTimeout) : IAsyncDisposable
{
    // A call whose connection closes between its lookup and its stream tries the next one; this
    // bounds that for a server that closes every connection at once.
    private const int OpenAttempts = 3;

    private readonly object _lock = new();
    private H2Connection _current = null!;
    private Task<H2Connection>? _replacing;
    private readonly List<H2Connection> _retired = new(); // replaced, possibly still draining

    /// <summary>Connections opened after the first (the report's reconnect count).</summary>
    public int Reconnects { get; private set; }

    public H2Connection Current => Volatile.Read(ref _current);

    public async Task StartAsync(CancellationToken cancel) => _current = await connect(cancel);

    /// <summary>Opens <paramref name="stream"/> for a call on the current connection, or on a new one if that takes no new streams.</summary>
    public async ValueTask OpenAsync(H2Stream stream, string path, ReadOnlyMemory<byte>? message, CancellationToken cancel)
    {
        for (var attempt = 1; ; attempt++)
        {
            var connection = Current;
            if (!connection.AcceptsNewStreams) connection = await ReplaceAsync(connection).WaitAsync(cancel);
            try
            {
                await connection.OpenAsync(stream, path, message, cancel);
                return;
            }
            catch (NoNewStreamsException) when (attempt < OpenAttempts)
            {
                // Nothing was sent on it: the next attempt takes the replacement.
            }
        }
    }

    private Task<H2Connection> ReplaceAsync(H2Connection old)
    {
        lock (_lock)
        {
            if (_current != old) return Task.FromResult(_current);
            if (_replacing is null || _replacing.IsCompleted) _replacing = ConnectAsync(old);
            return _replacing;
        }
    }

    private async Task<H2Connection> ConnectAsync(H2Connection old)
    {
        // Not any one call's token: the connection serves them all.
        using var deadline = new CancellationTokenSource(connectTimeout);
        H2Connection fresh;
        try
        {
            fresh = await connect(deadline.Token);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
        {
            // As an IOException, so each call that needed it fails as "connection" and the run goes on.
            throw new IOException($"cannot open a new connection in place of one the server closed: {e.Message}", e);
        }
        lock (_lock)
        {
            _retired.RemoveAll(c => c.IsClosed);
            _retired.Add(old);
            Volatile.Write(ref _current, fresh);
            Reconnects++;
        }
        return fresh;
    }

    public async ValueTask DisposeAsync()
    {
        Task<H2Connection>? replacing;
        lock (_lock) replacing = _replacing;
        if (replacing is not null)
        {
            // A reconnect still under way finishes first, so the connection it opens is closed too.
            try { await replacing; }
            catch (Exception) { } // its failure already went to the calls that waited for it
        }
        H2Connection[] all;
        lock (_lock) all = [.. _retired, _current];
        foreach (var c in all) await c.DisposeAsync();
    }
}
