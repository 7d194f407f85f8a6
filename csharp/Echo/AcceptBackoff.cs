using System.Net.Sockets;
using Bench.CommandLine;

namespace Bench.Echo;

/// <summary>
/// What the accept loop does when the process or the machine runs out of descriptors or memory:
/// wait a little and try again, so connections can close and free what the next accept needs,
/// instead of dying (or spinning on an accept that keeps failing). The wait starts at 1 ms and
/// doubles while the errors go on, to 100 ms; one accepted connection resets it. The first error
/// of each kind is said once on stderr.
/// </summary>
/// <remarks>
/// The wait runs on a thread of its own, started with the server, not on a timer: out of
/// descriptors, the runtime cannot start a thread (each one needs a pipe), and the first
/// Task.Delay would start the timer thread and a pool worker, and the failed start aborts the
/// process ("Out of memory."). Everything this path touches is created here, before the first accept.
/// Nor are the last descriptors ever spent on connections: the runtime still needs some after the
/// start (a pool worker, the JIT's background thread, two for each assembly it loads late), and
/// failing to get one it aborts, sometimes with nothing on stderr. So the server holds at most its
/// soft limit, less what it had open at the start, less <see cref="Reserve"/>, and at that budget
/// it waits as it would for EMFILE.
/// </remarks>
public sealed class AcceptBackoff
{
    public static readonly TimeSpan First = TimeSpan.FromMilliseconds(1);
    public static readonly TimeSpan Cap = TimeSpan.FromMilliseconds(100);

    /// <summary>Descriptors kept for the runtime; it held 57 at the start, 2 per loaded assembly.</summary>
    public const int Reserve = 32;

    private readonly TextWriter _log;
    private readonly CancellationToken _stop;
    private readonly WaitHandle _stopped;
    private readonly HashSet<SocketError> _reported = [];
    private readonly SemaphoreSlim _go = new(0);
    private TimeSpan _next = First;
    private TimeSpan _wait;
    private TaskCompletionSource? _done;
    private readonly int _budget;
    private int _held;

    public AcceptBackoff(TextWriter log, CancellationToken stop)
    {
        _log = log;
        _stop = stop;
        _stopped = stop.WaitHandle; // created now, not when descriptors have run out
        new Thread(Sleep) { IsBackground = true, Name = "accept backoff" }.Start();
        _budget = ConnectionBudget();
    }

    /// <summary>The server holds as many connections as it may: the next accept must wait for one to close.</summary>
    public bool AtBudget => Volatile.Read(ref _held) >= _budget;

    /// <summary>Counts an accepted connection as held until the task serving it ends (its socket closed).</summary>
    public void Hold(Task connection)
    {
        Interlocked.Increment(ref _held);
        connection.ContinueWith(static (_, self) => Interlocked.Decrement(ref ((AcceptBackoff)self!)._held), this,
                                TaskContinuationOptions.ExecuteSynchronously);
    }

    private static int ConnectionBudget()
    {
        if (FileLimit.Soft() is not { } soft || soft > int.MaxValue) return int.MaxValue;
        int open = Directory.GetFiles("/proc/self/fd").Length;
        return Math.Max(1, (int)soft - open - Reserve);
    }

    /// <summary>
    /// The accept errors worth waiting out, as .NET reports them on Linux (checked against
    /// SocketErrorPal on .NET 10): EMFILE and ENFILE arrive as TooManyOpenSockets, ENOBUFS as
    /// NoBufferSpaceAvailable, and ENOMEM, which .NET has no name for, as the catch-all
    /// SocketError.SocketError. A listener that is gone says something else (OperationAborted,
    /// InvalidArgument, NotSocket) and still ends the loop.
    /// </summary>
    public static bool IsResourceExhaustion(SocketError error) =>
        error is SocketError.TooManyOpenSockets or SocketError.NoBufferSpaceAvailable or SocketError.SocketError;

    /// <summary>
    /// Completes after the wait this error calls for (canceled when the server stops); says the
    /// error on stderr the first time of its kind. One caller at a time: the accept loop.
    /// </summary>
    public Task WaitAsync(SocketException error) => WaitAsync(error.SocketErrorCode, Name(error.SocketErrorCode));

    /// <summary>Waits as for EMFILE, said the same way: the server holds its budget of connections.</summary>
    public Task WaitAtBudgetAsync() => WaitAsync(SocketError.TooManyOpenSockets,
        $"too many open files ({_budget} connections held: the descriptor limit less {Reserve} kept for the runtime)");

    private Task WaitAsync(SocketError kind, string what)
    {
        if (_reported.Add(kind))
            _log.WriteLine($"csharp-echo: accept: {what}; backing off " +
                           $"{First.TotalMilliseconds:0}-{Cap.TotalMilliseconds:0} ms while it lasts, open connections still served");
        _wait = _next;
        _next = _next * 2 < Cap ? _next * 2 : Cap;
        var done = new TaskCompletionSource();
        _done = done;
        _go.Release(); // a full fence: the thread sees _wait and _done
        return done.Task;
    }

    /// <summary>An accept succeeded: the next error waits the shortest time again.</summary>
    public void Reset() => _next = First;

    private void Sleep()
    {
        while (true)
        {
            try
            {
                _go.Wait(_stop);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var done = _done!;
            // The accept loop's continuation runs here, on this thread, until its next accept waits.
            if (_stopped.WaitOne(_wait)) done.TrySetCanceled(_stop);
            else done.TrySetResult();
        }
    }

    // Not the exception's message: .NET maps the SocketError back to one errno, so EMFILE would read as ENFILE's text.
    private static string Name(SocketError error) => error switch
    {
        SocketError.TooManyOpenSockets => "too many open files (EMFILE or ENFILE)",
        SocketError.NoBufferSpaceAvailable => "no buffer space (ENOBUFS)",
        _ => $"{error} (how .NET reports ENOMEM on Linux)",
    };
}
