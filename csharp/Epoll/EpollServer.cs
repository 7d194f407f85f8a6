using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Bench.Epoll;

/// <summary>
/// cpp-epoll's server (cpp/epoll/server.cpp), line for line in C#: one event loop per CPU the
/// process may run on, each with its own edge-triggered epoll set of non-blocking connections
/// and no locks on the request path. The loops share one listener, registered with EPOLLEXCLUSIVE so a new
/// connection wakes one loop, not all. No Socket, no task, no thread pool: libc through
/// LibraryImport, per-connection state in a table of structs indexed by descriptor, one read
/// buffer per loop, and nothing allocated on the managed heap while serving.
/// </summary>
internal static class EpollServer
{
    public const string Program = "csharp-epoll";

    public static int Run(string host, int port)
    {
        // A shell starts a background job with SIGINT ignored, and the runtime leaves a signal
        // that was ignored at start ignored: PosixSignalRegistration would never see it.
        // cpp-epoll blocks it and takes it with sigwait, which sees it all the same; so that both
        // stop on SIGINT alike, its disposition goes back to the default before the runtime's
        // signal handling starts (at the first registration, below).
        Libc.set_signal(Libc.SIGINT, Libc.SIG_DFL);
        // A server cannot know how many peers will come; take all the descriptors allowed.
        Net.ReserveDescriptors(Net.RaiseFileLimit(0, Program));

        int listener;
        try
        {
            listener = Net.Listen(Endpoint.Resolve(host, port));
        }
        catch (Exception e) when (e is SystemFailure or ArgumentException)
        {
            Console.Error.WriteLine($"{Program}: cannot listen on {host}:{port}: {e.Message}");
            return 1;
        }
        var bound = Endpoint.Local(listener);
        _ = Console.Error; // opened now: out of descriptors later, saying so must not need one

        var loops = new ServerLoop[Net.AllowedCpuCount()];
        for (int i = 0; i < loops.Length; i++) loops[i] = new ServerLoop(listener);
        var threads = loops.Select((loop, i) => new Thread(loop.Run) { Name = $"epoll loop {i}", IsBackground = true }).ToArray();
        foreach (var thread in threads) thread.Start();

        // SIGTERM and SIGINT wake the main thread, which wakes every loop through its eventfd.
        using var stop = new ManualResetEventSlim();
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // we exit ourselves, with status 0
            stop.Set();
        }
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        Console.Out.WriteLine($"READY tcp {bound}");
        Console.Out.Flush();
        var allocatedAtReady = GC.GetTotalAllocatedBytes(precise: true);
        var collectionsAtReady = GC.CollectionCount(0);

        stop.Wait();
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedAtReady;
        foreach (var loop in loops) loop.Stop();
        foreach (var thread in threads) thread.Join();
        // The claim "nothing allocated while serving", checked on every run: what the whole
        // process put on the managed heap between READY and the signal (the signal's own handling included).
        Console.Error.WriteLine($"{Program}: served; {allocated} bytes allocated on the managed heap after READY, " +
                                $"{GC.CollectionCount(0) - collectionsAtReady} collections");
        return 0;
    }
}

/// <summary>One event loop: its epoll set, its connections, its read buffer.</summary>
internal sealed unsafe class ServerLoop
{
    // Per read: large enough to move bulk payloads in few system calls.
    private const int ReadBuffer = 64 * 1024;
    // Reads one connection may do per turn before the others get theirs.
    private const int ReadsPerTurn = 16;
    // Accepts per wake-up; the listener is level-triggered, so the rest come next turn.
    private const int AcceptsPerTurn = 256;
    private const int MaxEvents = 512;

    // Out of memory or socket buffers an accept fails and the level-triggered listener would
    // wake us again at once: this loop stops watching it for a while (csharp/Echo's AcceptBackoff
    // waits, 1 ms doubling to 100 ms while the errors go on, reset by one accept).
    private const long FirstBackoffNs = 1_000_000, BackoffCapNs = 100_000_000;

    private static int s_saidNoFds, s_saidNoMemory;
    private static readonly Lock s_descriptors = new();

    /// <summary>
    /// One accepted connection, in a table indexed by descriptor. Pending is the only
    /// per-connection buffer: the part of one read that the peer's window could not take yet.
    /// While it is non-empty the loop reads nothing more from this peer (back-pressure), so it
    /// never exceeds one read.
    /// </summary>
    private struct Connection
    {
        public byte* Pending; // native memory, null when nothing is pending
        public int PendingLength;
        public int PendingOffset;
        public bool Open;
        public bool FinQueued; // an EPOLLRDHUP was seen: the peer's FIN waits behind its data
    }

    private readonly int _epoll;
    private readonly int _wake;
    private readonly int _listener; // shared by every loop
    private int _spareFd;
    private readonly byte* _buffer;
    private readonly byte* _events;
    private Connection* _connections;
    private int _capacity;
    // Connections that used up their turn with data possibly left: served first next turn.
    private int* _again, _againNext;
    private int _againCount, _againCapacity, _againNextCapacity;
    private bool _stopping;
    private long _backoffNs = FirstBackoffNs;
    private long _listenerBackAt; // 0: the listener is watched

    public ServerLoop(int listener)
    {
        _listener = listener;
        _epoll = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        if (_epoll < 0) throw Endpoint.Failure("epoll_create1", Libc.LastError());
        _wake = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
        if (_wake < 0) throw Endpoint.Failure("eventfd", Libc.LastError());
        _spareFd = Libc.open("/dev/null", Libc.O_RDONLY | Libc.O_CLOEXEC);
        _buffer = (byte*)NativeMemory.AlignedAlloc(ReadBuffer, 64);
        _events = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * EpollEvent.Size));
        _againCapacity = _againNextCapacity = 1024;
        _again = (int*)NativeMemory.Alloc((nuint)_againCapacity, sizeof(int));
        _againNext = (int*)NativeMemory.Alloc((nuint)_againNextCapacity, sizeof(int));
        Watch(_wake, Libc.EPOLLIN);
        // Level-triggered, so a partial accept batch fires again; exclusive, so one loop wakes.
        Watch(_listener, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE);
    }

    private void Watch(int fd, uint events)
    {
        if (EpollEvent.Add(_epoll, fd, events, (uint)fd) != 0) throw Endpoint.Failure("epoll_ctl", Libc.Errno());
    }

    /// <summary>Safe from any thread: the loop notices at its next wake-up.</summary>
    public void Stop()
    {
        ulong one = 1;
        Libc.write(_wake, &one, sizeof(ulong));
    }

    public void Run()
    {
        while (!_stopping)
            if (!Turn()) return;
    }

    /// <summary>One epoll_wait and what it brought; false when the loop cannot go on.</summary>
    private bool Turn()
    {
        int timeout = _againCount == 0 ? -1 : 0;
        if (_listenerBackAt != 0)
        {
            var left = (_listenerBackAt - Clock.NowNs() + 999_999) / 1_000_000;
            if (left <= 0) WatchListenerAgain();
            else if (timeout < 0 || left < timeout) timeout = (int)left;
        }
        int count = Libc.epoll_wait(_epoll, _events, MaxEvents, timeout);
        if (count < 0)
        {
            int errno = Libc.LastError();
            if (errno == Libc.EINTR) return true;
            Console.Error.WriteLine($"{EpollServer.Program}: epoll_wait: {Libc.ErrorText(errno)}");
            return false;
        }
        // Connections that used up their turn last time go first, then the new events.
        if (_againCount > 0)
        {
            // Swapped, so serving can fill the other list (and grow it) while this one is read.
            int* again = _again;
            _again = _againNext;
            _againNext = again;
            (_againCapacity, _againNextCapacity) = (_againNextCapacity, _againCapacity);
            int waiting = _againCount;
            _againCount = 0;
            for (int i = 0; i < waiting; i++) Serve(again[i], Libc.EPOLLIN);
        }
        for (int i = 0; i < count; i++)
        {
            int fd = EpollEvent.Data(_events, i);
            if (fd == _listener) AcceptBatch();
            else if (fd == _wake) _stopping = true;
            else Serve(fd, EpollEvent.Events(_events, i));
        }
        return true;
    }

    private void AcceptBatch()
    {
        for (int i = 0; i < AcceptsPerTurn; i++)
        {
            int fd, errno = 0;
            // One loop at a time: while one sheds a connection (its spare descriptor closed for the
            // moment), another loop's accept must not take the descriptor it just freed (below).
            // Uncontended with one loop; with several, the kernel serialises accepts on one
            // listener anyway.
            lock (s_descriptors)
            {
                fd = Libc.accept4(_listener, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
                if (fd < 0)
                {
                    errno = Libc.Errno();
                    if (errno is Libc.EMFILE or Libc.ENFILE) ShedOneConnection();
                }
            }
            if (fd < 0)
            {
                if (errno is Libc.ENOBUFS or Libc.ENOMEM) BackOff(errno);
                return; // EAGAIN: queue empty; anything else: try again next wake-up
            }
            _backoffNs = FirstBackoffNs;
            // Registered once for both directions, edge-triggered: no epoll_ctl per request.
            // An EPOLLOUT edge with nothing pending costs a wake-up entry, not a system call.
            // EPOLLRDHUP tells a FIN apart from data (see Serve).
            if (EpollEvent.Add(_epoll, fd, Libc.EPOLLIN | Libc.EPOLLOUT | Libc.EPOLLRDHUP | Libc.EPOLLET, (uint)fd) != 0)
            {
                Libc.close(fd);
                continue;
            }
            if (fd >= _capacity) Grow(fd + 1024);
            _connections[fd] = new Connection { Open = true };
        }
    }

    private void Grow(int capacity)
    {
        _connections = (Connection*)NativeMemory.Realloc(_connections, (nuint)capacity * (nuint)sizeof(Connection));
        new Span<Connection>(_connections + _capacity, capacity - _capacity).Clear();
        _capacity = capacity;
    }

    /// <summary>
    /// Out of descriptors, a level-triggered listener would wake us for ever. Give back the
    /// spare descriptor, accept the connection and close it at once, then take the spare again:
    /// the peer sees a clean close instead of a hang, and the loop stays responsive. Called
    /// under <see cref="s_descriptors"/>.
    /// </summary>
    /// <remarks>
    /// cpp-epoll does the same without the lock, where one loop's accept can take the descriptor
    /// another loop's shed has just freed, and the shedding loop then cannot open its spare
    /// again. Without the lock, with two loops and every descriptor held, both loops here ended
    /// up spinning on EMFILE with no spare left (ServerTests failed about one run in three, and
    /// nine in ten with the runtime's diagnostics off; with the lock, 16 in 16 passed). Other
    /// threads of the runtime can still take a freed descriptor (the debugger's transport thread
    /// was seen retrying its pipe's open on EMFILE), so a spare that could not be had back is
    /// fetched again before the next shed, and while there is none this loop stops watching the
    /// listener for a while instead of spinning.
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ShedOneConnection()
    {
        if (Interlocked.Exchange(ref s_saidNoFds, 1) == 0)
            Console.Error.WriteLine($"{EpollServer.Program}: accept: too many open files (EMFILE or ENFILE); closing new connections until some end");
        if (_spareFd < 0) _spareFd = Libc.open("/dev/null", Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (_spareFd < 0)
        {
            PauseListener(); // nothing to give back until some descriptor closes
            return;
        }
        Libc.close(_spareFd);
        int shed = Libc.accept4(_listener, null, null, Libc.SOCK_CLOEXEC);
        if (shed >= 0) Libc.close(shed);
        _spareFd = Libc.open("/dev/null", Libc.O_RDONLY | Libc.O_CLOEXEC);
    }

    /// <summary>
    /// Out of memory or socket buffers there is nothing to shed: stop watching the listener for
    /// a while (cpp-epoll would take the next wake-up, which a level-triggered listener with a
    /// full queue makes at once: a spin). The other loops, and this one's connections, go on.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void BackOff(int errno)
    {
        if (Interlocked.Exchange(ref s_saidNoMemory, 1) == 0)
            Console.Error.WriteLine($"{EpollServer.Program}: accept: {Libc.ErrorText(errno)}; backing off " +
                                    $"{FirstBackoffNs / 1_000_000}-{BackoffCapNs / 1_000_000} ms while it lasts, open connections still served");
        PauseListener();
    }

    /// <summary>Stops watching the listener in this loop for the back-off's wait (1 ms, doubling to 100 ms while it goes on).</summary>
    private void PauseListener()
    {
        if (Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_DEL, _listener, null) != 0) return; // still watched: retry next wake-up
        _listenerBackAt = Clock.NowNs() + _backoffNs;
        _backoffNs = Math.Min(_backoffNs * 2, BackoffCapNs);
    }

    private void WatchListenerAgain()
    {
        _listenerBackAt = 0;
        Watch(_listener, Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE);
    }

    private void Close(int fd)
    {
        ref var connection = ref _connections[fd];
        if (connection.Pending != null) NativeMemory.Free(connection.Pending);
        connection = default;
        Libc.close(fd); // close() also leaves epoll
    }

    /// <summary>Sends what is pending; false when the connection is gone (an error other than EAGAIN).</summary>
    private static bool Flush(int fd, ref Connection connection)
    {
        while (connection.PendingOffset < connection.PendingLength)
        {
            var sent = Libc.send(fd, connection.Pending + connection.PendingOffset,
                                 (nuint)(connection.PendingLength - connection.PendingOffset), Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
            if (sent < 0)
            {
                int errno = Libc.Errno();
                if (errno == Libc.EINTR) continue;
                return errno == Libc.EAGAIN;
            }
            connection.PendingOffset += (int)sent;
        }
        // Give the memory back: a peer that was slow once should not keep 64 KiB for ever.
        NativeMemory.Free(connection.Pending);
        connection.Pending = null;
        connection.PendingLength = 0;
        connection.PendingOffset = 0;
        return true;
    }

    private void Serve(int fd, uint events)
    {
        if ((uint)fd >= (uint)_capacity || !_connections[fd].Open) return;
        ref var connection = ref _connections[fd];
        // Remembered, not just tested: the event that carried it may be consumed while this
        // connection is throttled or waits in the again list.
        if ((events & Libc.EPOLLRDHUP) != 0) connection.FinQueued = true;

        if (connection.PendingLength != 0)
        {
            // Throttled: only a drained backlog lets us read again (the EPOLLIN edge that came
            // meanwhile was consumed, so reading now is required, not optional).
            if (!Flush(fd, ref connection))
            {
                Close(fd);
                return;
            }
            if (connection.PendingLength != 0) return;
        }
        else if ((events & (Libc.EPOLLIN | Libc.EPOLLERR | Libc.EPOLLHUP | Libc.EPOLLRDHUP)) == 0)
        {
            return; // a write-space edge with nothing to write
        }

        for (int turn = 0; turn < ReadsPerTurn; turn++)
        {
            var received = Libc.recv(fd, _buffer, ReadBuffer, 0);
            if (received == 0)
            {
                Close(fd); // everything it sent was echoed
                return;
            }
            if (received < 0)
            {
                int errno = Libc.Errno();
                if (errno == Libc.EINTR) continue;
                if (errno != Libc.EAGAIN) Close(fd); // reset mid-echo and the like
                return; // EAGAIN: drained; the next edge brings more
            }
            var sent = Libc.send(fd, _buffer, (nuint)received, Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
            if (sent < 0)
            {
                if (Libc.Errno() != Libc.EAGAIN)
                {
                    Close(fd);
                    return;
                }
                sent = 0;
            }
            if (sent < received)
            {
                // The peer reads slower than it writes: keep the rest, stop reading, and let
                // the EPOLLOUT edge resume us when its window opens.
                Keep(ref connection, (int)sent, (int)received);
                return;
            }
            // A short read emptied the receive queue: anything arriving later raises a new
            // edge, so the recv() that would only say EAGAIN is skipped. Not when a FIN is known
            // to be queued: it sits behind the data and raises no new edge, so read on to see the EOF.
            if (received < ReadBuffer && !connection.FinQueued) return;
        }
        Again(fd); // turn used up with data possibly left; no edge will say so
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Keep(ref Connection connection, int from, int to)
    {
        connection.Pending = (byte*)NativeMemory.Alloc((nuint)(to - from));
        Buffer.MemoryCopy(_buffer + from, connection.Pending, to - from, to - from);
        connection.PendingLength = to - from;
        connection.PendingOffset = 0;
    }

    private void Again(int fd)
    {
        if (_againCount == _againCapacity)
        {
            _againCapacity *= 2;
            _again = (int*)NativeMemory.Realloc(_again, (nuint)_againCapacity * sizeof(int));
        }
        _again[_againCount++] = fd;
    }
}
