using System.Runtime.InteropServices;
using System.Text;
using CliWrap;
using CliWrap.Exceptions;

namespace Bench.Harness.Run;

/// <summary>
/// One child process the harness started: pinned with taskset, its output watched line by line,
/// stopped with SIGTERM and then killed with its whole process tree if it does not go.
/// Every process the harness starts goes through here, so none is left behind.
/// </summary>
public sealed partial class ManagedProcess : IAsyncDisposable
{
    private const int TailLines = 20;
    private readonly CancellationTokenSource _kill = new();
    private readonly CommandTask<CommandResult> _task;
    private readonly Queue<string> _stderrTail = new();
    private readonly List<string> _stdout = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _watchers = new();
    private readonly Task<int> _exit;

    public string Name { get; }
    public int Pid => _task.ProcessId;
    public string Cpus { get; }

    /// <summary>The exit status once the process has ended (killed processes read -1).</summary>
    public Task<int> Exited => _exit;

    private ManagedProcess(string name, IReadOnlyList<string> command, string workingDirectory, string? cpus,
        IReadOnlyDictionary<string, string?>? environment)
    {
        Name = name;
        Cpus = cpus ?? "";
        IEnumerable<string> argv = cpus is null ? command : ["taskset", "-c", cpus, .. command];
        var cli = Cli.Wrap(argv.First()).WithArguments(argv.Skip(1))
            .WithWorkingDirectory(workingDirectory)
            .WithEnvironmentVariables(environment ?? new Dictionary<string, string?>())
            .WithStandardInputPipe(PipeSource.Null)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(OnStdout))
            .WithStandardErrorPipe(PipeTarget.ToDelegate(OnStderr))
            .WithValidation(CommandResultValidation.None);
        _task = cli.ExecuteAsync(_kill.Token);
        _exit = ObserveExitAsync();
    }

    /// <summary>Starts a process; a program that cannot be found is an error that says so.</summary>
    public static ManagedProcess Start(string name, IReadOnlyList<string> command, string workingDirectory, string? cpus = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        try { return new ManagedProcess(name, command, workingDirectory, cpus, environment); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or CommandExecutionException or InvalidOperationException)
        {
            throw new ProcessStartException($"{name}: cannot start '{command[0]}': {e.Message} (was it built?)");
        }
    }

    /// <summary>The exit status once known; -1 when the harness killed it.</summary>
    public int? ExitCode { get; private set; }

    private async Task<int> ObserveExitAsync()
    {
        try { return (ExitCode = (await _task).ExitCode).Value; }
        catch (OperationCanceledException) { return (ExitCode = -1).Value; }
        finally
        {
            lock (_watchers)
                foreach (var w in _watchers) w.Found.TrySetException(new ProcessExitedException(this));
        }
    }

    private void OnStdout(string line)
    {
        lock (_watchers)
        {
            _stdout.Add(line);
            foreach (var w in _watchers.Where(w => w.Match(line))) w.Found.TrySetResult(line);
        }
    }

    private void OnStderr(string line)
    {
        lock (_stderrTail)
        {
            _stderrTail.Enqueue(line);
            if (_stderrTail.Count > TailLines) _stderrTail.Dequeue();
        }
    }

    public IReadOnlyList<string> StdoutLines { get { lock (_watchers) return _stdout.ToList(); } }

    public string StderrTail { get { lock (_stderrTail) return string.Join(" | ", _stderrTail); } }

    /// <summary>
    /// Waits for the first stdout line that matches, up to the deadline. Throws
    /// <see cref="ProcessExitedException"/> when the process ends first and TimeoutException when time runs out.
    /// </summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan deadline, CancellationToken cancel)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_watchers)
        {
            if (_stdout.FirstOrDefault(match) is { } seen) return seen;
            if (_exit.IsCompleted) throw new ProcessExitedException(this);
            _watchers.Add((match, found));
        }
        try { return await found.Task.WaitAsync(deadline, cancel); }
        catch (TimeoutException) { throw new TimeoutException($"{Name} printed no matching line within {deadline.TotalSeconds:F0} s"); }
    }

    public bool HasExited => _exit.IsCompleted;

    /// <summary>SIGTERM, then up to <paramref name="grace"/> to exit, then SIGKILL for the whole tree. True when it went by itself.</summary>
    public async Task<bool> StopAsync(TimeSpan grace)
    {
        if (_exit.IsCompleted) return true;
        _ = kill(Pid, SigTerm);
        try
        {
            await _exit.WaitAsync(grace);
            return true;
        }
        catch (TimeoutException)
        {
            await KillAsync();
            return false;
        }
    }

    /// <summary>Kills the process and everything it started (CliWrap kills the entire tree).</summary>
    public async Task KillAsync()
    {
        if (!_exit.IsCompleted) await _kill.CancelAsync();
        await _exit;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _kill.Dispose();
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}

public sealed class ProcessStartException(string message) : Exception(message);

public sealed class ProcessExitedException(ManagedProcess process)
    : Exception($"{process.Name} exited{(process.ExitCode is { } code ? $" with status {code}" : "")}" +
                $"{(process.StderrTail.Length > 0 ? $"; it said: {process.StderrTail}" : "")}");
