using System.Runtime.InteropServices;
using Bench.CommandLine;

namespace Bench.Epoll;

/// <summary>
/// cpp-epoll's client (cpp/epoll/client.cpp) in C#: one edge-triggered epoll loop per CPU the
/// process may run on, each driving its share of the connections as small state machines in a
/// table of structs. No per-connection thread, task, stack or buffer: the payload is generated
/// and verified on the fly from its pattern.
/// </summary>
internal static class EpollClient
{
    public const string Program = "csharp-epoll";

    public static int Run(ClientOptions options)
    {
        // One descriptor per connection plus a few for the process itself.
        var descriptors = (ulong)options.Connections + 64;
        Net.RaiseFileLimit(descriptors, Program);
        Net.ReserveDescriptors(descriptors);

        Endpoint server;
        try { server = Endpoint.Resolve(options.Host, options.Port); }
        catch (ArgumentException e) { throw new UsageException($"--host: {e.Message}"); }

        var failures = new FailureLog(Program);
        var window = new MeasuredWindow();
        if (options.Workload == Workload.Burst && options.Warmup > TimeSpan.Zero)
        {
            // An unrecorded burst of a tenth of the connections first: the same code, warm (JIT
            // tiers included). Its one window is a warm-up, so it prints no MEASURING.
            var warmup = options with { Connections = Math.Max(1, options.Connections / 10) };
            using var discarded = RunLoops(warmup, server, failures, new MeasuredWindow(), warmups: 1, out _, out _);
            failures.WarmupFailed(discarded.Failed);
        }
        var persistentWarmup = options.Workload == Workload.Persistent && options.Warmup > TimeSpan.Zero;
        using var total = RunLoops(options, server, failures, window, persistentWarmup ? 1 : 0, out var wallNs, out var cpu);
        return Report.Finish(options, total, wallNs, cpu, Program);
    }

    /// <summary>One run of the workload on fresh loops, one thread each; the window covers its measured part.</summary>
    private static Tally RunLoops(ClientOptions options, Endpoint server, FailureLog failures, MeasuredWindow window, int warmups,
                                  out long wallNs, out CpuTime cpu)
    {
        int loopCount = Math.Min(Net.AllowedCpuCount(), options.Connections);
        var shared = new SharedRun(options, server, failures, window, warmups);
        var loops = new ClientLoop[loopCount];
        for (int i = 0; i < loopCount; i++) loops[i] = new ClientLoop(shared, i, loopCount);
        // Runs once each time every loop has arrived (connections open, or a warm-up over), before
        // any of them goes on: opens the next window on a clock they all share.
        using var barrier = new Barrier(loopCount, _ => shared.OpenWindow());
        var threads = loops.Select((loop, i) => new Thread(() => loop.Run(barrier)) { Name = $"epoll client {i}", IsBackground = true }).ToArray();
        foreach (var thread in threads) thread.Start();
        foreach (var thread in threads) thread.Join(); // the last echo is in (persistent connections are still open)
        window.Stop();

        var total = new Tally(loops.Sum(l => l.Tally.SampleCount));
        long first = long.MaxValue, last = 0, warmupFailed = 0;
        foreach (var loop in loops)
        {
            if (loop.Error is { } error) throw error; // set-up only (epoll, no threads); requests never throw
            first = Math.Min(first, loop.FirstNs);
            last = Math.Max(last, loop.LastNs);
            warmupFailed += loop.WarmupFailed;
            total.Merge(loop.Tally);
            loop.Dispose();
        }
        failures.WarmupFailed(warmupFailed);
        wallNs = last > first ? last - first : 0;
        cpu = window.Cpu;
        return total;
    }
}

/// <summary>Run-wide values every loop reads; T0 and End are written by the barrier while no loop runs.</summary>
internal sealed class SharedRun(ClientOptions options, Endpoint server, FailureLog failures, MeasuredWindow window, int warmups)
{
    public readonly ClientOptions Options = options;
    public readonly Endpoint Server = server;
    public readonly FailureLog Failures = failures;
    private int _warmups = warmups; // windows to open, before the measured one, that record nothing
    public long T0, End;

    public void OpenWindow()
    {
        var seconds = Options.Duration.TotalSeconds;
        if (_warmups > 0)
        {
            --_warmups;
            seconds = Options.Warmup.TotalSeconds;
        }
        else
        {
            window.Start();
        }
        T0 = Clock.NowNs();
        End = T0 + (long)(seconds * 1e9);
    }
}

internal sealed unsafe class ClientLoop : IDisposable
{
    private const long Never = long.MaxValue;
    private const int IoBuffer = 64 * 1024;
    // Connects started per loop turn: every connection still starts within a few milliseconds,
    // but completions are handled in between instead of after ten thousand connect() calls.
    private const int ConnectsPerTurn = 256;
    // How often connections are checked against --timeout; a scan of 10k is microseconds.
    private const long TimeoutScanNs = 50_000_000;
    private const int MaxEvents = 1024;

    private enum State : byte { Idle, Connecting, Connected, Busy, Waiting, Finished }

    /// <summary>What a fresh connection does (cpp's on_connected_); None: no new connections are started.</summary>
    private enum OnConnected : byte { None, Idle, BeginRequest }

    private struct Connection
    {
        public uint Index; // global connection number c of the payload pattern
        public State State;
        public int Fd;
        public long Request; // k: requests completed so far, and the one in flight
        public long Sent;
        public long Received;
        public long OriginNs; // latency is measured from here (intended time in open loop)
        public long DeadlineNs;
    }

    private readonly SharedRun _shared;
    private readonly ClientOptions _options;
    private readonly bool _burst;
    private readonly int _payload;
    private readonly int _epoll;
    private readonly long _timeoutNs;
    private readonly int _ioSize;
    private readonly byte* _out, _in, _events, _server;
    private readonly uint _serverLength;
    private readonly int _family;
    private readonly Connection[] _connections; // never resized: epoll holds indices
    private OnConnected _onConnected;
    // Open loop: connection slots by due time, earliest first.
    private readonly PriorityQueue<int, long> _due;
    private long _active;

    public Tally Tally { get; private set; }
    public long WarmupFailed { get; private set; }
    public long FirstNs { get; private set; } = Never;
    public long LastNs { get; private set; }
    public Exception? Error { get; private set; }

    public ClientLoop(SharedRun shared, int loop, int loops)
    {
        _shared = shared;
        _options = shared.Options;
        _burst = _options.Workload == Workload.Burst;
        _payload = _options.Payload;
        _epoll = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0) throw Endpoint.Failure("epoll_create1", Libc.LastError());
        _timeoutNs = (long)(_options.Timeout.TotalSeconds * 1e9);
        _ioSize = Math.Min(_payload, IoBuffer);
        _out = (byte*)NativeMemory.Alloc((nuint)_ioSize);
        _in = (byte*)NativeMemory.Alloc((nuint)_ioSize);
        _events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EpollEvent.Size));
        _server = (byte*)NativeMemory.AllocZeroed(28);
        shared.Server.CopyTo(_server);
        _serverLength = shared.Server.Length;
        _family = shared.Server.Family;
        var mine = new List<Connection>();
        for (int c = loop; c < _options.Connections; c += loops) mine.Add(new Connection { Index = (uint)c, Fd = -1 });
        _connections = [.. mine];
        _due = new PriorityQueue<int, long>(_options.Rate > 0 ? _connections.Length : 0);
        Tally = new Tally(_burst ? _connections.Length : 1 << 16);
    }

    public void Run(Barrier window)
    {
        try
        {
            if (_burst) RunBurst(window);
            else RunPersistent(window);
        }
        catch (SystemFailure e)
        {
            Error = e;
            window.RemoveParticipant(); // the others must not wait for this loop at the next window
        }
    }

    /// <summary>Burst: connect, one exchange, close, for every connection at once.</summary>
    private void RunBurst(Barrier window)
    {
        window.SignalAndWait();
        Drive(OnConnected.BeginRequest);
    }

    /// <summary>
    /// Persistent: open everything (untimed), meet the other loops, warm up, then load for
    /// --duration. The warm-up is the same load on the same connections; its counts are dropped,
    /// but a connection it lost stays lost: the measured window counts it failed.
    /// </summary>
    private void RunPersistent(Barrier window)
    {
        Drive(OnConnected.Idle);
        if (_options.Warmup > TimeSpan.Zero)
        {
            var opening = Tally; // connect failures, kept for RESULT
            Tally = new Tally();
            var openBefore = OpenConnections();
            window.SignalAndWait();
            Load();
            WarmupFailed = Tally.Failed;
            Tally.Dispose();
            Tally = opening;
            for (var lost = openBefore - OpenConnections(); lost > 0; --lost)
            {
                Tally.Failed += 1;
                Tally.ConnectionFinished(0);
            }
        }
        window.SignalAndWait();
        Load();
    }

    /// <summary>One window of load on every open connection, until the shared end.</summary>
    private void Load()
    {
        FirstNs = Never;
        LastNs = 0;
        bool openLoop = _options.Rate > 0;
        for (int slot = 0; slot < _connections.Length; slot++)
        {
            ref var c = ref _connections[slot];
            if (c.State != State.Connected) continue;
            c.Request = 0; // each window runs its own schedule from its own t0
            ++_active;
            if (openLoop) Schedule(ref c, slot, IntendedSend(c.Index, 0));
            else BeginRequest(ref c, Clock.NowNs());
        }
        Drive(OnConnected.None);
    }

    private int OpenConnections()
    {
        int open = 0;
        foreach (ref var c in _connections.AsSpan())
            if (c.State == State.Connected) open++;
        return open;
    }

    /// <summary>The event loop; with OnConnected.None it starts no connections and only serves the open ones.</summary>
    private void Drive(OnConnected onConnected)
    {
        _onConnected = onConnected;
        int nextToStart = onConnected != OnConnected.None ? 0 : _connections.Length;
        if (onConnected != OnConnected.None) _active += _connections.Length;
        long nextScan = Clock.NowNs() + TimeoutScanNs;

        while (_active > 0)
        {
            for (int n = 0; n < ConnectsPerTurn && nextToStart < _connections.Length; n++)
            {
                var slot = nextToStart++;
                StartConnect(ref _connections[slot], slot);
            }
            long now = Clock.NowNs();
            long wake = nextScan;
            if (nextToStart < _connections.Length) wake = now;
            if (_due.TryPeek(out _, out var dueAt)) wake = Math.Min(wake, dueAt);
            Libc.Timespec timeout = default;
            if (wake > now)
            {
                timeout.Seconds = (wake - now) / 1_000_000_000;
                timeout.Nanoseconds = (wake - now) % 1_000_000_000;
            }
            // epoll_pwait2 takes nanoseconds: open-loop send times need better than 1 ms.
            int count = Libc.epoll_pwait2(_epoll, _events, MaxEvents, &timeout, null);
            if (count < 0 && Libc.LastError() != Libc.EINTR) throw Endpoint.Failure("epoll_pwait2", Libc.LastError());
            for (int i = 0; i < count; i++)
            {
                int slot = EpollEvent.Data(_events, i);
                Handle(ref _connections[slot], slot, EpollEvent.Events(_events, i));
            }

            now = Clock.NowNs();
            while (_due.TryPeek(out var slot, out var when) && when <= now)
            {
                _due.Dequeue();
                BeginRequest(ref _connections[slot], when);
            }
            if (now >= nextScan)
            {
                Expire(now);
                nextScan = now + TimeoutScanNs;
            }
        }
    }

    private void StartConnect(ref Connection c, int slot)
    {
        c.OriginNs = Clock.NowNs(); // burst latency runs from the start of the connect
        FirstNs = Math.Min(FirstNs, c.OriginNs);
        c.Fd = Libc.socket(_family, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        if (c.Fd < 0)
        {
            Fail(ref c, Failure.Connect, "socket: " + Libc.ErrorText(Libc.LastError()));
            return;
        }
        Libc.SetOption(c.Fd, Libc.IPPROTO_TCP, Libc.TCP_NODELAY);
        if (Libc.connect(c.Fd, _server, _serverLength) != 0 && Libc.LastError() is var errno && errno != Libc.EINPROGRESS)
        {
            Fail(ref c, Failure.Connect, "connect: " + Libc.ErrorText(errno));
            return;
        }
        // Both directions, edge-triggered, registered once: EPOLLOUT reports the connect, then
        // the room to send; EPOLLIN the echo. No epoll_ctl per request.
        if (EpollEvent.Add(_epoll, c.Fd, Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLET, (uint)slot) != 0)
        {
            Fail(ref c, Failure.Io, "epoll_ctl: " + Libc.ErrorText(Libc.Errno()));
            return;
        }
        c.State = State.Connecting;
        c.DeadlineNs = c.OriginNs + _timeoutNs;
    }

    private void Handle(ref Connection c, int slot, uint events)
    {
        if (c.State == State.Connecting)
        {
            if ((events & (Libc.EPOLLOUT | Libc.EPOLLERR | Libc.EPOLLHUP)) == 0) return;
            // Writable without an error flag is a completed connect; only a failure needs the
            // getsockopt that says why.
            if ((events & (Libc.EPOLLERR | Libc.EPOLLHUP)) != 0)
            {
                int error = 0;
                uint length = sizeof(int);
                Libc.getsockopt(c.Fd, Libc.SOL_SOCKET, Libc.SO_ERROR, &error, &length);
                Fail(ref c, Failure.Connect, "connect: " + Libc.ErrorText(error != 0 ? error : Libc.ECONNREFUSED));
                return;
            }
            if (_onConnected == OnConnected.BeginRequest) BeginRequest(ref c, c.OriginNs);
            else Idle(ref c);
            return;
        }
        // An idle connection the server closed or reset is detected at its next request.
        if (c.State != State.Busy) return;
        if (c.Sent < _payload && (events & Libc.EPOLLOUT) != 0 && !PumpSend(ref c)) return;
        if ((events & (Libc.EPOLLIN | Libc.EPOLLERR | Libc.EPOLLHUP)) != 0) PumpReceive(ref c, slot);
    }

    /// <summary>Sends what the socket takes now; the rest goes on the next EPOLLOUT edge. False when the connection failed.</summary>
    private bool PumpSend(ref Connection c)
    {
        var payload = new Payload(c.Index, c.Request);
        while (c.Sent < _payload)
        {
            int chunk = (int)Math.Min(_ioSize, _payload - c.Sent);
            payload.Fill(_out, chunk, c.Sent);
            var n = Libc.send(c.Fd, _out, (nuint)chunk, Libc.MSG_NOSIGNAL);
            if (n < 0)
            {
                int errno = Libc.Errno();
                if (errno == Libc.EINTR) continue;
                if (errno == Libc.EAGAIN) return true;
                Fail(ref c, FailureLog.ForErrno(errno), "send: " + Libc.ErrorText(errno));
                return false;
            }
            c.Sent += n;
            c.DeadlineNs = Clock.NowNs() + _timeoutNs;
        }
        return true;
    }

    /// <summary>Reads and verifies until the socket is drained or the whole echo is in.</summary>
    private void PumpReceive(ref Connection c, int slot)
    {
        var payload = new Payload(c.Index, c.Request);
        while (c.Received < _payload)
        {
            int want = (int)Math.Min(_ioSize, _payload - c.Received);
            var n = Libc.recv(c.Fd, _in, (nuint)want, 0);
            if (n == 0)
            {
                Fail(ref c, Failure.Closed, $"server closed after {c.Received} of {_payload} bytes");
                return;
            }
            if (n < 0)
            {
                int errno = Libc.Errno();
                if (errno == Libc.EINTR) continue;
                if (errno == Libc.EAGAIN) return;
                Fail(ref c, FailureLog.ForErrno(errno), "recv: " + Libc.ErrorText(errno));
                return;
            }
            if (!payload.Matches(_in, (int)n, c.Received))
            {
                Fail(ref c, Failure.Mismatch, $"connection {c.Index} request {c.Request} near byte {c.Received}");
                return;
            }
            c.Received += n;
            c.DeadlineNs = Clock.NowNs() + _timeoutNs;
        }
        Complete(ref c, slot);
    }

    private void Complete(ref Connection c, int slot)
    {
        long now = Clock.NowNs();
        Tally.Succeeded(now - c.OriginNs, _payload);
        LastNs = Math.Max(LastNs, now);
        ++c.Request;
        if (_burst) Finish(ref c);
        else if (_options.Rate > 0) Schedule(ref c, slot, IntendedSend(c.Index, c.Request));
        else if (now >= _shared.End) Rest(ref c);
        else BeginRequest(ref c, now);
    }

    /// <summary>Open loop: connection i's request k is due at t0 + (i + k·N)/R.</summary>
    private long IntendedSend(uint index, long request)
    {
        double offsetS = ((double)index + (double)request * _options.Connections) / _options.Rate;
        return _shared.T0 + (long)(offsetS * 1e9);
    }

    private void Schedule(ref Connection c, int slot, long due)
    {
        if (due >= _shared.End) Rest(ref c);
        else if (due <= Clock.NowNs()) BeginRequest(ref c, due); // late: go now, latency from due
        else
        {
            c.State = State.Waiting;
            c.DeadlineNs = Never;
            _due.Enqueue(slot, due);
        }
    }

    private void BeginRequest(ref Connection c, long origin)
    {
        if (!_burst) FirstNs = Math.Min(FirstNs, Clock.NowNs());
        c.State = State.Busy;
        c.OriginNs = origin;
        c.Sent = 0;
        c.Received = 0;
        c.DeadlineNs = Clock.NowNs() + _timeoutNs;
        // Send at once: the socket almost always has room. The echo cannot be back yet, so no
        // recv here; its EPOLLIN edge will come.
        PumpSend(ref c);
    }

    private void Expire(long now)
    {
        foreach (ref var c in _connections.AsSpan())
            if (c.State is State.Connecting or State.Busy && c.DeadlineNs <= now)
                Fail(ref c, Failure.Timeout, c.State == State.Connecting ? "connect: no answer within --timeout" : "no progress within --timeout");
    }

    private void Fail(ref Connection c, Failure kind, string detail)
    {
        _shared.Failures.Record(kind, detail);
        Tally.Failed += 1;
        Finish(ref c);
    }

    /// <summary>Persistent: open and idle until the next window (or the end of the run).</summary>
    private void Idle(ref Connection c)
    {
        c.State = State.Connected;
        c.DeadlineNs = Never;
        --_active;
    }

    /// <summary>Persistent: this connection's part of the window is over; it stays open.</summary>
    private void Rest(ref Connection c)
    {
        Tally.ConnectionFinished(c.Request);
        Idle(ref c);
    }

    private void Finish(ref Connection c)
    {
        if (c.Fd >= 0) Libc.close(c.Fd); // closing also removes it from the epoll set
        c.Fd = -1;
        c.State = State.Finished;
        c.DeadlineNs = Never;
        Tally.ConnectionFinished(c.Request);
        if (_burst) LastNs = Math.Max(LastNs, Clock.NowNs());
        --_active;
    }

    public void Dispose()
    {
        // Persistent connections are closed here, after the window (as cpp's destructors do).
        foreach (ref var c in _connections.AsSpan())
            if (c.Fd >= 0)
            {
                Libc.close(c.Fd);
                c.Fd = -1;
            }
        Libc.close(_epoll);
        Tally.Dispose();
        NativeMemory.Free(_out);
        NativeMemory.Free(_in);
        NativeMemory.Free(_events);
        NativeMemory.Free(_server);
    }
}
