namespace Bench.Harness.Processes;

/// <summary>
/// A program the harness started and watches, wherever it runs: on this machine
/// (<see cref="ManagedProcess"/>) or on a host reached over ssh (<see cref="Remote.RemoteProcess"/>).
/// Both run it in a process group of its own that dies with the harness, however the harness ends.
/// </summary>
public interface IChildProcess : IAsyncDisposable
{
    string Name { get; }

    /// <summary>The exit status once the process has ended (killed processes read -1).</summary>
    Task<int> Exited { get; }

    int? ExitCode { get; }

    bool HasExited { get; }

    IReadOnlyList<string> StdoutLines { get; }

    /// <summary>Its last lines on stderr, joined, for error messages.</summary>
    string StderrTail { get; }

    /// <summary>The first stdout line that matches; ProcessExitedException when it ends first, TimeoutException when time runs out.</summary>
    Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan deadline, CancellationToken cancel);

    /// <summary>SIGTERM, up to the grace period to exit, then SIGKILL for its whole group; true when it went by itself.</summary>
    Task<bool> StopAsync(TimeSpan grace);

    /// <summary>SIGKILL for its whole group, and waits for it to be gone.</summary>
    Task KillAsync();

    /// <summary>SIGSTOP for its whole group, until <see cref="Resume"/>.</summary>
    void Pause();

    void Resume();
}
