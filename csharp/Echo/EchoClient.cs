using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bench.CommandLine;

namespace Bench.Echo;

/// <summary>The load client: burst and persistent workloads, every echo verified byte for byte.</summary>
static class EchoClient
{
    public static async Task<int> RunAsync(ClientOptions options)
    {
        Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
        IPAddress[] addresses;
        // A name that does not resolve (SocketException) or is no host name at all (Dns's
        // ArgumentExceptions are all about its argument) is the user's error; nothing else is.
        try { addresses = IPAddress.TryParse(options.Host, out var literal) ? [literal] : Dns.GetHostAddresses(options.Host); }
        catch (Exception e) when (e is SocketException or ArgumentException)
        {
            throw new UsageException($"cannot resolve --host '{options.Host}': {e.Message}");
        }
        var address = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
            ?? throw new UsageException($"--host '{options.Host}' has no IPv4 address");

        var endpoint = new IPEndPoint(address, options.Port);
        if (options.Workload == Workload.Burst && options.Warmup > TimeSpan.Zero)
        {
            // Unrecorded bursts first, the same code: a tenth of the connections, then smaller
            // ones until one leaves the JIT nothing to recompile (JitQuiet).
            var connections = Math.Max(1, options.Connections / 10);
            for (var round = 0; round < JitQuiet.Rounds; round++)
            {
                var compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
                var warmup = new ClientRun(options with { Connections = connections }, endpoint);
                await warmup.BurstAsync(window: null);
                FirstErrors.WarmupFailed(warmup.Failed);
                var more = await JitQuiet.CompiledSinceAsync(compiled);
                if (more == 0) break;
                connections = Math.Min(connections, JitQuiet.RoundConnections);
            }
        }
        var run = new ClientRun(options, endpoint);
        var window = new MeasuredWindow();
        var wallNs = options.Workload == Workload.Burst ? await run.BurstAsync(window) : await run.PersistentAsync(window);
        return run.Report(wallNs, window.Cpu);
    }
}

/// <summary>
/// Tiered compilation recompiles a method optimised once it has run 30 times (twice over with
/// dynamic PGO: instrumented, then final), on a background thread. A measured burst must not
/// share its one core with that thread, so warm-up bursts repeat until the JIT stays idle.
/// </summary>
static class JitQuiet
{
    public const int Rounds = 6;
    /// <summary>After the first round: enough calls for the next tier (30 each), few ports left in TIME_WAIT.</summary>
    public const int RoundConnections = 200;

    /// <summary>Waits until the JIT has compiled nothing for 200 ms (10 s at most); how many methods it compiled since the count given.</summary>
    public static async Task<long> CompiledSinceAsync(long before)
    {
        var giveUp = Stopwatch.GetTimestamp() + 10 * Stopwatch.Frequency;
        var last = System.Runtime.JitInfo.GetCompiledMethodCount();
        while (Stopwatch.GetTimestamp() < giveUp)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(200));
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now == last) break;
            last = now;
        }
        return last - before;
    }
}

/// <summary>One client run's connections and what they measured.</summary>
sealed class ClientRun(ClientOptions options, IPEndPoint server)
{
    private readonly ConnectionTally[] _tallies = Enumerable.Range(0, options.Connections)
        .Select(_ => new ConnectionTally()).ToArray();
    // Made before any window opens, like the C++ client's connection table: a connection's
    // buffers are not what a burst measures.
    private readonly Echo[] _echoes = Enumerable.Range(0, options.Connections)
        .Select(c => new Echo(options.Payload, c)).ToArray();
    private readonly FirstErrors _errors = new();
    private readonly Watchdog _watchdog = new(options.Timeout);

    public long Failed => _tallies.Sum(t => t.Failed);

    /// <summary>All connections at once: connect, send, read the echo, verify, close.</summary>
    /// <param name="window">none for the unrecorded warm-up burst</param>
    public async Task<long> BurstAsync(MeasuredWindow? window)
    {
        using var watching = _watchdog.Watch(_echoes);
        var bursts = new Task[_echoes.Length];
        window?.Start();
        var start = Stopwatch.GetTimestamp();
        // Started from this one thread, no task each on the pool: each runs up to its pending
        // connect, and the rest runs inline on the runtime's epoll thread, as the C++ client's
        // one loop does it. Per connection that is no pool hand-off and no timer (the watchdog).
        for (var c = 0; c < bursts.Length; c++) bursts[c] = OneShotAsync(_echoes[c], _tallies[c]);
        await Task.WhenAll(bursts);
        var end = Stopwatch.GetTimestamp();
        window?.Stop();
        return Wire.ElapsedNanoseconds(start, end);
    }

    private async Task OneShotAsync(Echo echo, ConnectionTally tally)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await echo.ConnectAsync(server);
            await echo.RoundTripAsync(0);
            tally.Succeed(Wire.ElapsedNanoseconds(started, Stopwatch.GetTimestamp()), options.Payload);
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            tally.Fail();
            _errors.Note(e, echo.TimedOut);
        }
        finally { echo.Socket?.Dispose(); }
    }

    /// <summary>What one connection can meet; the watchdog's close shows as ObjectDisposedException or OperationAborted.</summary>
    private static bool IsConnectionFailure(Exception e) =>
        e is SocketException or ObjectDisposedException or EchoMismatchException or IOException;

    /// <summary>
    /// Open every connection first (not timed), warm up, then echo on all of them for the duration.
    /// The warm-up is the same loop on the same connections into tallies that are then dropped;
    /// a connection it loses stays lost, and the measured window counts it failed.
    /// </summary>
    public async Task<long> PersistentAsync(MeasuredWindow window)
    {
        using var watching = _watchdog.Watch(_echoes);
        var opened = await Task.WhenAll(_echoes.Select(ConnectAsync));
        var live = opened;
        if (options.Warmup > TimeSpan.Zero)
        {
            var dropped = opened.Select(_ => new ConnectionTally()).ToArray();
            var lost = await LoadAsync(live, dropped, options.Warmup);
            FirstErrors.WarmupFailed(dropped.Sum(t => t.Failed));
            foreach (var c in lost) _tallies[c].Fail();
            live = live.Select((echo, c) => lost.Contains(c) ? null : echo).ToArray();
        }
        window.Start();
        var start = Stopwatch.GetTimestamp();
        await LoadAsync(live, _tallies, options.Duration);
        var end = Stopwatch.GetTimestamp();
        window.Stop(); // the last in-window echo is in; the connections close after the reading
        foreach (var echo in _echoes) echo.Socket?.Dispose();
        return Wire.ElapsedNanoseconds(start, end);
    }

    /// <summary>One window of load on every live connection, each recording into its tally; the connections it lost.</summary>
    private async Task<HashSet<int>> LoadAsync(Echo?[] echoes, ConnectionTally[] tallies, TimeSpan duration)
    {
        var start = Stopwatch.GetTimestamp();
        var end = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var alive = await Task.WhenAll(echoes.Select((echo, c) =>
            echo is null ? Task.FromResult(true) : Task.Run(() => LoopAsync(echo, c, tallies[c], start, end))));
        return [.. Enumerable.Range(0, echoes.Length).Where(c => !alive[c])];
    }

    private async Task<Echo?> ConnectAsync(Echo echo, int c)
    {
        try
        {
            await echo.ConnectAsync(server);
            return echo;
        }
        catch (Exception e) when (IsConnectionFailure(e))
        {
            echo.Socket?.Dispose();
            _tallies[c].Fail();
            _errors.Note(e, echo.TimedOut);
            return null;
        }
    }

    /// <summary>One connection's requests from start until end; false when the connection failed.</summary>
    private async Task<bool> LoopAsync(Echo echo, int c, ConnectionTally tally, long start, long end)
    {
        // Open loop: connection c sends request k at start + (c + k·N)/rate and is timed from
        // then, so a stalled server's queueing shows in the latency instead of being skipped.
        var interval = options.Rate > 0 ? Stopwatch.Frequency * options.Connections / options.Rate : 0;
        var firstOffset = options.Rate > 0 ? Stopwatch.Frequency * c / options.Rate : 0;
        for (long k = 0; ; k++)
        {
            var intended = options.Rate > 0 ? start + (long)(firstOffset + k * interval) : Stopwatch.GetTimestamp();
            if (intended >= end) return true;
            await WaitUntilAsync(intended);
            try
            {
                await echo.RoundTripAsync(k);
                tally.Succeed(Wire.ElapsedNanoseconds(intended, Stopwatch.GetTimestamp()), options.Payload);
            }
            catch (Exception e) when (IsConnectionFailure(e))
            {
                // The stream is out of step after a failure: this connection is done.
                tally.Fail();
                _errors.Note(e, echo.TimedOut);
                return false;
            }
        }
    }

    /// <summary>
    /// Timers fire in whole milliseconds, late: sleep until 2 ms before the slot, then yield
    /// until it comes, so the client's own lateness does not pass for server latency.
    /// </summary>
    private static async ValueTask WaitUntilAsync(long timestamp)
    {
        var early = Stopwatch.Frequency / 500;
        var wait = timestamp - early - Stopwatch.GetTimestamp();
        if (wait > 0) await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency));
        while (Stopwatch.GetTimestamp() < timestamp) await Task.Yield();
    }

    /// <summary>Writes the samples, prints the RESULT and human lines; the exit code.</summary>
    public int Report(long wallNs, CpuTime cpu)
    {
        long ok = _tallies.Sum(t => t.Ok), failed = _tallies.Sum(t => t.Failed), bytes = _tallies.Sum(t => t.Bytes);
        if (options.SamplesPath is { } path)
            Wire.WriteSamples(path, _tallies.Select(t => t.Samples), _tallies.Select(t => t.SampleCount));
        var (min, max) = _tallies.Length == 0 ? (0L, 0L) : (_tallies.Min(t => t.Ok), _tallies.Max(t => t.Ok));
        Console.Out.WriteLine($"RESULT ok={ok} failed={failed} wall_ns={wallNs} bytes={bytes} conn_min={min} conn_max={max} cpu_user_us={cpu.UserUs} cpu_sys_us={cpu.SysUs}");
        var avgUs = ok == 0 ? 0 : _tallies.Sum(t => t.LatencySumNs) / ok / 1000.0;
        Console.Out.WriteLine($"C#: {options.Connections} clients, total time = {wallNs / 1e6:F2} ms, avg = {avgUs:F1} μs");
        return failed == 0 ? 0 : 1;
    }
}

/// <summary>One connection: its socket and its request/echo exchange; buffers reused for every request.</summary>
sealed class Echo(int payload, int connection)
{
    private readonly byte[] _sent = new byte[payload];
    private readonly byte[] _received = new byte[payload];
    private readonly int _connection = connection;

    /// <summary>None until <see cref="ConnectAsync"/>.</summary>
    public Socket? Socket { get; private set; }

    /// <summary>When the connect or request in flight started (Stopwatch ticks), 0 when idle; read by the <see cref="Watchdog"/>.</summary>
    public long InFlightSince;

    public volatile bool TimedOut;

    public async ValueTask ConnectAsync(EndPoint server)
    {
        Socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Volatile.Write(ref InFlightSince, Stopwatch.GetTimestamp());
        try { await Socket.ConnectAsync(server, CancellationToken.None); }
        finally { Volatile.Write(ref InFlightSince, 0); }
    }

    public async ValueTask RoundTripAsync(long request)
    {
        Volatile.Write(ref InFlightSince, Stopwatch.GetTimestamp());
        try { await ExchangeAsync(request, Socket!); }
        finally { Volatile.Write(ref InFlightSince, 0); }
    }

    private async ValueTask ExchangeAsync(long request, Socket socket)
    {
        Wire.FillPayload(_sent, _connection, request);
        // Send and receive concurrently: a payload larger than the socket buffers would
        // otherwise deadlock against a server that echoes as it reads.
        var sending = SendAllAsync(socket);
        var got = 0;
        while (got < _received.Length)
        {
            var n = await socket.ReceiveAsync(_received.AsMemory(got), SocketFlags.None);
            if (n == 0) throw new EchoMismatchException($"server closed after {got} of {_received.Length} bytes");
            got += n;
        }
        await sending;
        if (!_sent.AsSpan().SequenceEqual(_received))
            throw new EchoMismatchException("echo differs from what was sent");
    }

    private async Task SendAllAsync(Socket socket)
    {
        var data = _sent.AsMemory();
        while (!data.IsEmpty)
            data = data[await socket.SendAsync(data, SocketFlags.None)..];
    }
}

/// <summary>
/// Enforces --timeout without a timer per connection or request: one sweep every 100 ms closes
/// any socket whose connect or request has been in flight too long, failing its pending operation.
/// </summary>
sealed class Watchdog(TimeSpan timeout)
{
    public IDisposable Watch(Echo[] echoes)
    {
        var limit = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var timer = new Timer(_ =>
        {
            var now = Stopwatch.GetTimestamp();
            foreach (var echo in echoes)
            {
                var since = Volatile.Read(ref echo.InFlightSince);
                if (since != 0 && now - since > limit)
                {
                    echo.TimedOut = true;
                    echo.Socket?.Dispose();
                }
            }
        }, null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
        return timer;
    }
}

sealed class EchoMismatchException(string message) : Exception(message);

/// <summary>Counts and latency samples of one connection; touched by that connection only.</summary>
sealed class ConnectionTally
{
    public long[] Samples { get; private set; } = new long[1];
    public int SampleCount { get; private set; }
    public long Ok { get; private set; }
    public long Failed { get; private set; }
    public long Bytes { get; private set; }
    public long LatencySumNs { get; private set; }

    public void Succeed(long latencyNs, int bytes)
    {
        if (SampleCount == Samples.Length)
        {
            var grown = new long[Samples.Length * 2];
            Samples.CopyTo(grown, 0);
            Samples = grown;
        }
        Samples[SampleCount++] = latencyNs;
        Ok++;
        Bytes += bytes;
        LatencySumNs += latencyNs;
    }

    public void Fail() => Failed++;
}

/// <summary>Prints the first error of each kind to stderr, so a failing run says why once.</summary>
sealed class FirstErrors
{
    private readonly HashSet<string> _seen = new();

    public void Note(Exception e, bool timedOut)
    {
        var kind = timedOut ? "timeout" : e is SocketException se ? se.SocketErrorCode.ToString() : e.GetType().Name;
        lock (_seen)
            if (_seen.Add(kind))
                Console.Error.WriteLine($"csharp-echo client: first {kind}: {(timedOut ? "no answer within --timeout" : e.Message)}");
    }

    /// <summary>Warm-up failures are left out of RESULT; this says how many there were (if any).</summary>
    public static void WarmupFailed(long count)
    {
        if (count > 0) Console.Error.WriteLine($"csharp-echo client: warm-up: {count} requests failed");
    }
}
