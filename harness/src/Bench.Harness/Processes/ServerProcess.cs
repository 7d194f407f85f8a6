using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Run;

namespace Bench.Harness.Processes;

/// <summary>
/// A server the harness started: pinned, in a process group the harness owns, past its ready
/// line. Disposing it stops it and reaps its whole process tree. The suite, `serve`, `torture`
/// and the tests all start servers through here.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    /// <summary>How long a server may take to print its ready line (a cold .NET start with JIT is the slowest here).</summary>
    public static readonly TimeSpan DefaultReadyTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a server may take to exit after SIGTERM before it is killed (the contract asks for a second).</summary>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private ServerProcess(ManagedProcess process, ReadyLine ready) => (Process, Ready) = (process, ready);

    public ManagedProcess Process { get; }
    public ReadyLine Ready { get; }

    /// <summary>Listen on loopback, on a port the kernel picks.</summary>
    public static IReadOnlyList<string> Loopback => ContractArguments.Tcp("127.0.0.1", 0);

    private static int socketFiles;

    /// <summary>
    /// The contract's listen arguments for a transport; socket files go in the scratch folder,
    /// each server its own: a cell keeps several servers of one name up at once, and a second
    /// bound to the first one's path would take its clients.
    /// </summary>
    public static IReadOnlyList<string> Listen(string transport, string name, string scratch) => transport switch
    {
        Transports.Tcp => Loopback,
        Transports.Unix => ["--unix", Path.Combine(scratch, $"{name}-{Interlocked.Increment(ref socketFiles)}.sock")],
        Transports.Memif => ["--memif-socket", Path.Combine(scratch, $"{name}-{Interlocked.Increment(ref socketFiles)}.memif.sock")],
        _ => throw new NotSupportedException($"the harness cannot drive transport '{transport}' yet"),
    };

    /// <summary>Starts the server and waits for its ready line; a server that cannot start, exits or stays silent is a <see cref="ServerStartException"/> saying why.</summary>
    public static async Task<ServerProcess> StartAsync(Implementation impl, IReadOnlyList<string> listen, string? cpus, CancellationToken cancel,
        TimeSpan? readyTimeout = null)
    {
        if (!impl.HasServer) throw new ServerStartException($"{impl.Name} has no server");
        ManagedProcess process;
        try { process = ManagedProcess.Start($"server {impl.Name}", [.. impl.ServerCommand!, .. listen], impl.Folder, cpus); }
        catch (ProcessStartException x) { throw new ServerStartException(x.Message); }
        try
        {
            var line = await process.WaitForLineAsync(ReadyLine.Matches, readyTimeout ?? DefaultReadyTimeout, cancel);
            return new ServerProcess(process, ReadyLine.Parse(line));
        }
        catch (Exception x) when (x is TimeoutException or ProcessExitedException or FormatException or OperationCanceledException)
        {
            await process.DisposeAsync();
            if (x is OperationCanceledException) throw;
            throw new ServerStartException(x is TimeoutException ? $"{x.Message}; stderr: {process.StderrTail}" : x.Message);
        }
    }

    public int Pid => Process.Pid;
    public bool HasExited => Process.HasExited;

    /// <summary>SIGTERM, then SIGKILL for the whole group after the grace period; true when it exited by itself.</summary>
    public Task<bool> StopAsync() => Process.StopAsync(StopGrace);

    public ValueTask DisposeAsync() => Process.DisposeAsync();
}

/// <summary>A server that did not come up: why, in words a reader can act on.</summary>
public sealed class ServerStartException(string message) : Exception(message);
