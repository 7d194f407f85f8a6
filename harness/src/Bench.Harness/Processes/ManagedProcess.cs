using System.Runtime.InteropServices;
using System.Text;
using Bench.Harness.Machine;
using CliWrap;
using CliWrap.Exceptions;

namespace Bench.Harness.Processes;

/// <summary>
/// One child process the harness started: in a session and process group of its own (see
/// <see cref="ProcessGroups"/>), pinned with taskset, its output watched line by line, stopped
/// with SIGTERM and then killed with its whole group if it does not go. Every server and client
/// the harness starts goes through here, so none is left behind, not even when the harness is
/// killed with SIGKILL.
/// </summary>
public sealed partial class ManagedProcess : IChildProcess
{
    private const int TailLines = 20;
    private readonly CancellationTokenSource _kill = new();
    private readonly CommandTask<CommandResult> _task;
    private readonly Queue<string> _stderrTail = new();
    private readonly List<string> _stdout = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _watchers = new();
    private readonly Task<int> _exit;
    private readonly Action<string>? _onStdout;
    private readonly Action<string>? _onStderr;
    private readonly ProcessGroups.Group _group;

    public string Name { get; }
    public int Pid => _task.ProcessId;
    public string Cpus { get; }

    /// <summary>The exit status once the process has ended (killed processes read -1).</summary>
    public Task<int> Exited => _exit;

    private ManagedProcess(string name, IReadOnlyList<string> command, string workingDirectory, string? cpus,
        IReadOnlyDictionary<string, string?>? environment, Action<string>? onStdout, Action<string>? onStderr, PipeSource? stdin)
    {
        Name = name;
        Cpus = cpus ?? "";
        (_onStdout, _onStderr) = (onStdout, onStderr);
        // setsid execs taskset, which execs the program: the pid CliWrap reports is the program's,
        // and it leads the new group (its pid is the group's id).
        IEnumerable<string> argv = [.. ProcessGroups.NewSession, .. cpus is null ? [] : new[] { "taskset", "-c", cpus }, .. command];
        var cli = Cli.Wrap(argv.First()).WithArguments(argv.Skip(1))
            .WithWorkingDirectory(workingDirectory)
            .WithEnvironmentVariables(environment ?? new Dictionary<string, string?>())
            .WithStandardInputPipe(stdin ?? PipeSource.Null)
            .WithStandardOutputPipe(PipeTarget.ToDelegate(OnStdout))
            .WithStandardErrorPipe(PipeTarget.ToDelegate(OnStderr))
            .WithValidation(CommandResultValidation.None);
        _task = cli.ExecuteAsync(_kill.Token);
        _group = ProcessGroups.Register(_task.ProcessId);
        _exit = ObserveExitAsync();
    }

    /// <summary>
    /// Starts a process; a program that cannot be found is an error that says so. onStdout and
    /// onStderr, when given, also see every line as it comes (to show a program's output live).
    /// stdin, when given, feeds the program's input (by default it reads end of input at once).
    /// </summary>
    public static ManagedProcess Start(string name, IReadOnlyList<string> command, string workingDirectory, string? cpus = null,
        IReadOnlyDictionary<string, string?>? environment = null, Action<string>? onStdout = null, Action<string>? onStderr = null,
        PipeSource? stdin = null)
    {
        // setsid would report a missing program only as an exit status; say so up front, as before.
        if (Programs.WhyNotRunnable(command[0], workingDirectory, environment?.GetValueOrDefault("PATH")) is { } why)
            throw new ProcessStartException($"{name}: cannot start '{command[0]}': {why} (was it built?)");
        try { return new ManagedProcess(name, command, workingDirectory, cpus, environment, onStdout, onStderr, stdin); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or CommandExecutionException or InvalidOperationException)
        {
            throw new ProcessStartException($"{name}: cannot start '{command[0]}': {e.Message} (was it built?)");
        }
    }

    /// <summary>The exit status once known; -1 when the harness killed it.</summary>
    public int? ExitCode { get; private set; }

    private async Task<int> ObserveExitAsync()
    {
        try
        {
            var code = (await _task).ExitCode;
            return (ExitCode = _killRequested ? -1 : code).Value;
        }
        catch (OperationCanceledException) { return (ExitCode = -1).Value; }
        finally
        {
            ProcessGroups.LeaderExited(_group);
            lock (_watchers)
                foreach (var w in _watchers) w.Found.TrySetException(new ProcessExitedException(this));
        }
    }

    private void OnStdout(string line)
    {
        _onStdout?.Invoke(line);
        lock (_watchers)
        {
            _stdout.Add(line);
            foreach (var w in _watchers.Where(w => w.Match(line))) w.Found.TrySetResult(line);
        }
    }

    private void OnStderr(string line)
    {
        _onStderr?.Invoke(line);
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

    /// <summary>
    /// SIGTERM for the program (the group's leader, which stops its own workers), then up to
    /// <paramref name="grace"/> to exit, then SIGKILL for the whole group. True when it went by itself.
    /// </summary>
    public async Task<bool> StopAsync(TimeSpan grace)
    {
        if (_exit.IsCompleted) return true;
        // Only while the pid is still the leader's (its output may outlive it, held by a grandchild).
        if (ProcFs.Stat(Pid)?.StartTime == _group.LeaderStart)
        {
            _ = kill(Pid, SigTerm);
            Resume(); // a paused group would hold the signal until continued
        }
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

    /// <summary>SIGINT for the program alone: for a tool that reports what it has when interrupted (perf stat).</summary>
    public void Interrupt()
    {
        if (!_exit.IsCompleted && ProcFs.Stat(Pid)?.StartTime == _group.LeaderStart) _ = kill(Pid, SigInt);
    }

    /// <summary>
    /// Kills the process and everything it started: SIGKILL for its whole group (and whatever
    /// else descends from it), then CliWrap's own tree kill as a backstop, which also ends the
    /// reading of its output. Once it has exited, whatever of the group is left (a grandchild
    /// that outlived it) is killed too, and the group is unregistered from the reaper.
    /// </summary>
    public async Task KillAsync()
    {
        if (!_exit.IsCompleted)
        {
            _killRequested = true;
            ProcessGroups.Kill(_group, leaderAlive: true);
            await _kill.CancelAsync();
        }
        await _exit;
        await ProcessGroups.ReleaseAsync(_group, TimeSpan.FromSeconds(2));
    }

    /// <summary>
    /// Stops the whole family (SIGSTOP) until <see cref="Resume"/>: a paused server takes no CPU
    /// and keeps its state (its warm JIT, its listening socket) while another one is measured.
    /// The family, not the group: the dpdk-testpmd wrapper starts testpmd in a session of its
    /// own, and a stop sent to the group alone left it polling the server's core while the next
    /// server was measured.
    /// </summary>
    public void Pause() => SignalFamily(SigStop);

    /// <summary>Continues a paused family (SIGCONT); harmless for one that is not paused.</summary>
    public void Resume() => SignalFamily(SigCont);

    private void SignalFamily(int signal)
    {
        if (_exit.IsCompleted) return;
        foreach (var pid in ProcessGroups.Family([_group], leadersAlive: true, livingOnly: true)) _ = kill(pid, signal);
    }

    /// <summary>Kills, synchronously, every process group the harness started that is still registered: for stopping at once.</summary>
    public static void KillAll() => ProcessGroups.KillAll();

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _kill.Dispose();
    }

    private volatile bool _killRequested;
    private const int SigInt = 2;
    private const int SigTerm = 15;
    private const int SigCont = 18;
    private const int SigStop = 19;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

}

public sealed class ProcessStartException(string message) : Exception(message);

public sealed class ProcessExitedException(IChildProcess process)
    : Exception($"{process.Name} exited{(process.ExitCode is { } code ? $" with status {code}" : "")}" +
                $"{(process.StderrTail.Length > 0 ? $"; it said: {process.StderrTail}" : "")}");
