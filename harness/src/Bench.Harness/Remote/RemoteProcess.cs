using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Bench.Harness.Processes;
using CliWrap;

namespace Bench.Harness.Remote;

/// <summary>
/// A program on a host, started over ssh under a small watchdog (<see cref="Watchdog"/>): it runs
/// in a session and process group of its own there, pinned with taskset, and the watchdog kills
/// that group when its stdin (the ssh channel) ends, so a harness that exits, is killed with
/// SIGKILL (its reaper kills the local ssh) or loses the host leaves nothing of ours running
/// there. The local end is an ordinary <see cref="ManagedProcess"/> (the ssh client), so this
/// machine's reaper covers it like any child. Control goes over the same channel, one word a
/// line: TERM, STOP, CONT, GO (start a program held at the barrier), KILL.
/// </summary>
public sealed class RemoteProcess : IChildProcess
{
    private readonly Channel<string> _control = Channel.CreateUnbounded<string>();
    private readonly ManagedProcess _ssh;
    private readonly TaskCompletionSource<int> _pid = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _waiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public RemoteHost Host { get; }
    public string Name { get; }

    private RemoteProcess(Ssh ssh, RemoteHost host, string name, IReadOnlyList<string> command, string workingDirectory, string cpus,
        bool atBarrier, Action<string>? onStdout, Action<string>? onStderr)
    {
        (Host, Name) = (host, name);
        var argv = ssh.Command(host, ["sh", "-c", Watchdog, "bench-watchdog", workingDirectory, cpus, atBarrier ? "1" : "0", .. command]);
        var input = PipeSource.Create(async (stdin, cancel) =>
        {
            // Lines as they are asked for; the channel's end closes the program's stdin, which tells the watchdog to kill.
            await foreach (var line in _control.Reader.ReadAllAsync(CancellationToken.None))
            {
                await stdin.WriteAsync(Encoding.ASCII.GetBytes(line + "\n"), CancellationToken.None);
                await stdin.FlushAsync(CancellationToken.None);
            }
        });
        _ssh = ManagedProcess.Start(name, argv, "/", onStdout: onStdout, onStderr: line =>
        {
            if (line.StartsWith(WatchdogPrefix + "pid ", StringComparison.Ordinal) &&
                int.TryParse(line.AsSpan(WatchdogPrefix.Length + 4), CultureInfo.InvariantCulture, out var pid)) _pid.TrySetResult(pid);
            else if (line == WatchdogPrefix + "waiting") _waiting.TrySetResult();
            else onStderr?.Invoke(line);
        }, stdin: input);
        _ = _ssh.Exited.ContinueWith(_ => { _pid.TrySetResult(0); _waiting.TrySetResult(); }, TaskScheduler.Default);
    }

    /// <summary>
    /// Starts the command on the host in the working directory there, pinned to the cpus; with
    /// <paramref name="atBarrier"/> the watchdog holds it until <see cref="Go"/>.
    /// </summary>
    public static RemoteProcess Start(Ssh ssh, RemoteHost host, string name, IReadOnlyList<string> command, string workingDirectory, string cpus,
        bool atBarrier = false, Action<string>? onStdout = null, Action<string>? onStderr = null) =>
        new(ssh, host, name, command, workingDirectory, cpus, atBarrier, onStdout, onStderr);

    /// <summary>The program's pid on its host (its group's id there); 0 when it never started.</summary>
    public Task<int> RemotePid => _pid.Task;

    /// <summary>Done when the watchdog holds the program at the barrier (or the session ended).</summary>
    public Task AtBarrier => _waiting.Task;

    /// <summary>Lets a program held at the barrier start.</summary>
    public void Go() => Send("GO");

    /// <summary>The local ssh client's pid (the end this machine's reaper covers).</summary>
    internal int LocalPid => _ssh.Pid;

    public Task<int> Exited => _ssh.Exited;
    public int? ExitCode => _ssh.ExitCode;
    public bool HasExited => _ssh.HasExited;
    public IReadOnlyList<string> StdoutLines => _ssh.StdoutLines;
    public string StderrTail => _ssh.StderrTail;

    public Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan deadline, CancellationToken cancel) =>
        _ssh.WaitForLineAsync(match, deadline, cancel);

    public async Task<bool> StopAsync(TimeSpan grace)
    {
        if (HasExited) return true;
        Send("CONT");
        Send("TERM");
        try
        {
            await Exited.WaitAsync(grace);
            return true;
        }
        catch (TimeoutException)
        {
            await KillAsync();
            return false;
        }
    }

    /// <summary>The watchdog kills the group; should the host not answer, the ssh client goes, and the channel's end tells the watchdog the same.</summary>
    public async Task KillAsync()
    {
        Send("KILL");
        _control.Writer.TryComplete();
        try { await Exited.WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (TimeoutException) { }
        await _ssh.KillAsync();
    }

    public void Pause() => Send("STOP");
    public void Resume() => Send("CONT");

    private void Send(string word) => _control.Writer.TryWrite(word);

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        await _ssh.DisposeAsync();
    }

    private const string WatchdogPrefix = "bench-watchdog: ";

    /// <summary>
    /// The watchdog, POSIX sh (`sh -c SCRIPT bench-watchdog DIR CPUS BARRIER PROGRAM ARGS...`).
    /// The program starts in a session of its own (setsid does not fork here: a background job of
    /// a shell without job control is no group leader, so $! is the program and its group's id),
    /// with the descriptor limit raised to the hard one and stdin from /dev/null. A background
    /// reader takes the controller's words from the channel; at its end, whatever the reason, it
    /// kills the group: SIGTERM, a second, SIGKILL. When the program exits by itself, what is left
    /// of its group is killed and its status is the session's.
    /// </summary>
    internal const string Watchdog = """
        cd "$1" || exit 126
        cpus=$2 barrier=$3
        shift 3
        ulimit -n "$(ulimit -Hn)" 2>/dev/null
        exec 3<&0 </dev/null
        if [ "$barrier" = 1 ]; then
          echo "bench-watchdog: waiting" >&2
          while read -r word <&3; do [ "$word" = GO ] && break; [ "$word" = KILL ] && exit 137; done
          [ "$word" = GO ] || exit 137
        fi
        setsid taskset -c "$cpus" "$@" 3<&- &
        pid=$!
        echo "bench-watchdog: pid $pid" >&2
        (
          while read -r word <&3; do
            case $word in
              TERM) kill -TERM "$pid" 2>/dev/null ;;
              STOP) kill -STOP -"$pid" 2>/dev/null ;;
              CONT) kill -CONT -"$pid" 2>/dev/null ;;
              KILL) break ;;
            esac
          done
          kill -CONT -"$pid" 2>/dev/null
          kill -TERM -"$pid" 2>/dev/null && sleep 1
          kill -KILL -"$pid" 2>/dev/null
        ) &
        reader=$!
        wait "$pid"
        status=$?
        kill -KILL -"$pid" 2>/dev/null
        kill "$reader" 2>/dev/null
        exit "$status"
        """;
}
