using System.Diagnostics;
using Bench.CommandLine;
using GrpcBench.Protos;

namespace GrpcBench.Client;

/// <summary>What one call slot did during the measurement.</summary>
sealed class SlotStats
{
    public long Ok;
    public long Bytes;
    public long FirstSend = long.MaxValue; // Stopwatch ticks, measured phase only
    public long LastDone = long.MinValue;
    public readonly List<long> Samples = new();
    public readonly List<long> OneWay = new();
    public readonly long[] AlgorithmOk = new long[8];
    public readonly long[] AlgorithmNanos = new long[8];

    // Read by the warm-up monitor and the timeout watchdog from other threads.
    public long Completed;
    public long InFlightSince; // 0 when idle
    public volatile bool TimedOut;
    public CancellationTokenSource Cancel = new();
}

/// <summary>The measurement as a whole, for the report.</summary>
sealed record RunResult(
    SlotStats[] Slots, long Failed, long WallTicks, double WarmupSeconds, bool WarmupStable, IReadOnlyDictionary<string, long> FailureKinds,
    CpuTime ClientCpu);

/// <summary>
/// Drives N concurrent call slots: closed loop, or open loop at a fixed total rate with latency
/// measured from each request's intended send time (no coordinated omission); an optional
/// warm-up before the measured phase; a watchdog that fails calls older than the timeout.
/// </summary>
sealed class LoadRunner(ClientSettings settings, ILoadEngine engine)
{
    private static readonly double TicksToNanos = 1e9 / Stopwatch.Frequency;

    private long _t0;
    private Pacer? _pacer;
    private long _measureStart = long.MaxValue;
    private long _stopAt = long.MaxValue;
    private long _issued;
    private long _failed;
    private readonly Dictionary<string, long> _failureKinds = new();
    private bool _stable = true;
    private readonly CancellationTokenSource _done = new();

    public async Task<RunResult> RunAsync(CancellationToken cancel)
    {
        var slots = new SlotStats[settings.InFlight];
        for (var i = 0; i < slots.Length; i++) slots[i] = new SlotStats();

        // Open every slot before the clock starts (streams are opened here).
        var calls = new ICallSlot[slots.Length];
        for (var i = 0; i < slots.Length; i++) calls[i] = await engine.OpenSlotAsync(i, cancel);

        _t0 = Stopwatch.GetTimestamp();
        if (!settings.AutoWarmup) StartMeasuring(_t0 + Ticks(settings.Warmup.TotalSeconds));
        using var pacer = _pacer = settings.Rate > 0 ? new Pacer(slots.Length, _t0, settings.Rate) : null;
        using var watchdog = new Timer(_ => Watch(slots), null, WatchPeriod(), WatchPeriod());
        var monitor = settings.AutoWarmup ? Task.Run(() => WarmUntilStableAsync(slots)) : Task.CompletedTask;

        var tasks = new Task[slots.Length];
        for (var i = 0; i < slots.Length; i++)
        {
            var slot = i;
            tasks[i] = Task.Run(() => DriveAsync(slot, calls[slot], slots[slot]));
        }
        await Task.WhenAll(tasks);
        await _windowOpened.Task;
        _window.Stop();
        _done.Cancel();
        await monitor;
        foreach (var call in calls) await call.DisposeAsync();

        var first = slots.Where(s => s.Ok > 0).Select(s => s.FirstSend).DefaultIfEmpty(0).Min();
        var last = slots.Where(s => s.Ok > 0).Select(s => s.LastDone).DefaultIfEmpty(0).Max();
        var warmup = Math.Max(0, (Math.Min(_measureStart, Stopwatch.GetTimestamp()) - _t0) / (double)Stopwatch.Frequency);
        return new RunResult(slots, _failed, last - first, warmup, _stable, _failureKinds, _window.Cpu);
    }

    // The client's own CPU time over the measured phase, for "client CPU per call"; its MEASURING
    // line tells the harness to read the server's and the cores' at the same moment.
    private readonly MeasuredWindow _window = new();
    private readonly TaskCompletionSource _windowOpened = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void StartMeasuring(long at)
    {
        var delay = TimeSpan.FromSeconds(Math.Max(0, at - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
        _ = Task.Delay(delay).ContinueWith(_ =>
        {
            _window.Start();
            _windowOpened.TrySetResult();
        });
        Volatile.Write(ref _stopAt, settings.Requests is null ? at + Ticks(settings.Duration.TotalSeconds) : long.MaxValue);
        Volatile.Write(ref _measureStart, at);
    }

    private async Task DriveAsync(int slot, ICallSlot call, SlotStats stats)
    {
        for (long k = 0; ; k++)
        {
            long intended;
            if (_pacer is not null)
            {
                // Slot i of N intends request k at t0 + (i + k*N) / R; late, it goes at once.
                intended = _pacer.Due(slot, k);
                if (intended >= Volatile.Read(ref _stopAt)) return;
                await _pacer.WaitAsync(slot, k);
            }
            else intended = Stopwatch.GetTimestamp();

            if (intended >= Volatile.Read(ref _stopAt)) return;
            var measured = intended >= Volatile.Read(ref _measureStart);
            if (measured && settings.Requests is { } limit && Interlocked.Increment(ref _issued) > limit) return;

            var sent = Stopwatch.GetTimestamp();
            var sentWall = DateTime.UtcNow;
            Volatile.Write(ref stats.InFlightSince, sent);
            try
            {
                var result = await call.CallAsync(k, stats.Cancel.Token);
                var done = Stopwatch.GetTimestamp();
                Volatile.Write(ref stats.InFlightSince, 0);
                Volatile.Write(ref stats.Completed, stats.Completed + 1);
                if (!measured) continue;
                // From the intended time when the call went late (the queue it met counts), from
                // the actual send when the pacer let it go a little early.
                var nanos = (long)((done - Math.Max(intended, sent)) * TicksToNanos);
                stats.Ok++;
                stats.Bytes += result.VerifiedBytes;
                stats.Samples.Add(nanos);
                if (result.ServerReceiveUnixNs != 0)
                    stats.OneWay.Add(result.ServerReceiveUnixNs - (sentWall.Ticks - DateTime.UnixEpoch.Ticks) * 100);
                if (result.Algorithm != SignatureAlgorithm.Unspecified)
                {
                    stats.AlgorithmOk[(int)result.Algorithm]++;
                    stats.AlgorithmNanos[(int)result.Algorithm] += nanos;
                }
                if (sent < stats.FirstSend) stats.FirstSend = sent;
                stats.LastDone = done;
            }
            catch (Exception e) when (e is CallFailedException or OperationCanceledException or IOException or InvalidOperationException)
            {
                Volatile.Write(ref stats.InFlightSince, 0);
                var failure = stats.TimedOut
                    ? new CallFailedException("timeout", $"no answer within {settings.Timeout.TotalSeconds:0.###} s (slot {slot} request {k})")
                    : e as CallFailedException ?? new CallFailedException(e is IOException ? "connection" : e.GetType().Name, e.Message, e);
                RecordFailure(failure);
                if (stats.TimedOut)
                {
                    stats.TimedOut = false;
                    stats.Cancel.Dispose();
                    stats.Cancel = new CancellationTokenSource();
                }
                // A call that fails at once (connection gone) must not spin: pause briefly.
                await Task.Delay(10);
            }
        }
    }

    private void RecordFailure(CallFailedException failure)
    {
        Interlocked.Increment(ref _failed);
        lock (_failureKinds)
        {
            // The first error of each kind goes to stderr; the rest are counted.
            if (!_failureKinds.TryGetValue(failure.Kind, out var count))
                Console.Error.WriteLine($"csharp-grpc-client: {failure.Kind}: {failure.Message}");
            _failureKinds[failure.Kind] = count + 1;
        }
    }

    private TimeSpan WatchPeriod() => TimeSpan.FromMilliseconds(Math.Clamp(settings.Timeout.TotalMilliseconds / 10, 5, 200));

    /// <summary>Fails (cancels) calls in flight for longer than the timeout: one timer for all slots, not one per call.</summary>
    private void Watch(SlotStats[] slots)
    {
        var limit = Stopwatch.GetTimestamp() - Ticks(settings.Timeout.TotalSeconds);
        foreach (var s in slots)
        {
            var since = Volatile.Read(ref s.InFlightSince);
            if (since != 0 && since < limit && !s.TimedOut)
            {
                s.TimedOut = true;
                s.Cancel.Cancel();
            }
        }
    }

    /// <summary>
    /// Warm-up until the rate is steady: three consecutive 1 s windows within 5% of each other,
    /// or the cap. .NET's tiered JIT on one core needs tens of seconds to reach steady code.
    /// </summary>
    private async Task WarmUntilStableAsync(SlotStats[] slots)
    {
        var rates = new List<double>();
        long Completed() => slots.Sum(s => Volatile.Read(ref s.Completed));
        var last = Completed();
        var cap = _t0 + Ticks(settings.WarmupCap.TotalSeconds);
        try
        {
            while (true)
            {
                await Task.Delay(1000, _done.Token);
                var now = Completed();
                rates.Add(now - last);
                last = now;
                var window = rates.TakeLast(3).ToArray();
                if (window.Length == 3 && window.Min() > 0 && window.Max() <= window.Min() * 1.05) break;
                if (Stopwatch.GetTimestamp() >= cap)
                {
                    _stable = false;
                    break;
                }
            }
            Console.Error.WriteLine($"csharp-grpc-client: warm-up {(_stable ? "steady" : "hit its cap")} after {rates.Count} s " +
                                    $"(last windows: {string.Join(", ", rates.TakeLast(3).Select(r => $"{r:0}/s"))})");
            StartMeasuring(Stopwatch.GetTimestamp());
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static long Ticks(double seconds) => (long)(seconds * Stopwatch.Frequency);
}
