using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit;

namespace Memif.Tests;

/// <summary>
/// The Memif.Echo server in a process of its own, as the harness runs it, and the victim for
/// hostile peers: a fault that kills a process (SIGBUS) must not take the test host with it.
/// Its stderr is collected line by line so a test can wait for what it reports.
/// </summary>
internal sealed class EchoServerProcess : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);
    private readonly Process _process;
    private readonly BlockingCollection<string> _stderr = [];
    private readonly List<string> _seen = [];

    private EchoServerProcess(Process process) => _process = process;

    /// <summary>Starts the echo binary (server or client) with stdout and stderr redirected.</summary>
    public static Process StartProgram(params string[] args)
    {
        var psi = new ProcessStartInfo(Paths.EchoBinary()) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>Starts <c>Memif.Echo server --memif-socket SOCKET ...</c> and waits for its ready line.</summary>
    public static EchoServerProcess Start(string socket, params string[] extra)
    {
        var server = new EchoServerProcess(StartProgram(["server", "--memif-socket", socket, .. extra]));
        server._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) server._stderr.Add(e.Data);
        };
        server._process.BeginErrorReadLine();
        var ready = server._process.StandardOutput.ReadLineAsync();
        Assert.True(ready.Wait(Generous), "no ready line");
        Assert.Equal($"READY memif {socket}", ready.Result);
        return server;
    }

    /// <summary>Waits for the next stderr line containing <paramref name="text"/>; lines before it are passed over.</summary>
    public string ExpectLine(string text)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < Generous)
        {
            if (!_stderr.TryTake(out string? line, Generous - clock.Elapsed)) break;
            _seen.Add(line);
            if (line.Contains(text, StringComparison.Ordinal)) return line;
        }
        Assert.Fail($"the echo server never said '{text}' (exited: {_process.HasExited}); it said:\n{string.Join('\n', _seen)}");
        return "";
    }

    public bool HasExited => _process.HasExited;

    /// <summary>SIGTERM, then it must exit 0 on its own: a crash (SIGBUS is exit status 135) fails here.</summary>
    public void Stop()
    {
        Assert.False(_process.HasExited, $"the echo server died (exit {(_process.HasExited ? _process.ExitCode : 0)})");
        Signals.Send(_process, Signals.SIGTERM);
        Assert.True(_process.WaitForExit(5000), "the echo server ignored SIGTERM");
        Assert.Equal(0, _process.ExitCode);
    }

    /// <summary>After a failed test: SIGTERM first, so a master removes its socket file, then SIGKILL.</summary>
    public void Dispose()
    {
        if (!_process.HasExited) Signals.Send(_process, Signals.SIGTERM);
        if (!_process.WaitForExit(5000)) _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
    }
}
