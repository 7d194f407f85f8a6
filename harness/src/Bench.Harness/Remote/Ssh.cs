using System.Text;
using CliWrap;
using CliWrap.Buffered;

namespace Bench.Harness.Remote;

/// <summary>
/// OpenSSH as the harness uses it: the user's own ssh (their keys, agent, ports and jump hosts
/// from ~/.ssh/config, or the hosts file's ssh_config), never a password prompt (BatchMode), a
/// bounded connect, and one multiplexed connection per host (ControlMaster), so that starting a
/// program or reading /proc mid-run opens no new TCP connection and does no key exchange.
/// </summary>
public sealed class Ssh(string? configFile)
{
    /// <summary>Where multiplexing sockets live: short (a socket path has ~100 bytes) and the user's own.</summary>
    private static readonly string ControlDir = System.IO.Path.Combine("/tmp", $"bench-ssh-{Environment.UserName}");

    public string? ConfigFile { get; } = configFile;

    // One master per ssh config as well as per destination: another config may log in as someone else (or not at all).
    private readonly string _configTag = Convert.ToHexString(System.Security.Cryptography.SHA1.HashData(
        System.Text.Encoding.UTF8.GetBytes(configFile ?? "~/.ssh/config")))[..8].ToLowerInvariant();

    /// <summary>The ssh argv up to the destination: the remote command follows it.</summary>
    public IReadOnlyList<string> Prefix(RemoteHost host)
    {
        Directory.CreateDirectory(ControlDir);
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(ControlDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return
        [
            "ssh", .. ConfigFile is null ? Array.Empty<string>() : ["-F", ConfigFile],
            "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            // Three missed probes 2 s apart: a lost host is a failed run within seconds, not a hang.
            "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3",
            "-o", "ControlMaster=auto", "-o", $"ControlPath={ControlDir}/{_configTag}-%C", "-o", "ControlPersist=60",
            host.Ssh,
        ];
    }

    /// <summary>The argv that runs one program with its arguments on the host, each argument quoted for the remote shell.</summary>
    public IReadOnlyList<string> Command(RemoteHost host, IEnumerable<string> argv) => [.. Prefix(host), "--", string.Join(' ', argv.Select(Quote))];

    /// <summary>Runs a command on the host to its end and captures its output; stdin, when given, is sent to it.</summary>
    public async Task<(int Exit, string Stdout, string Stderr)> RunAsync(RemoteHost host, IEnumerable<string> argv, TimeSpan timeout,
        CancellationToken cancel, Stream? stdin = null)
    {
        var full = Command(host, argv);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(timeout);
        try
        {
            var cli = Cli.Wrap(full[0]).WithArguments(full.Skip(1)).WithValidation(CommandResultValidation.None)
                .WithStandardInputPipe(stdin is null ? PipeSource.Null : PipeSource.FromStream(stdin));
            var result = await cli.ExecuteBufferedAsync(Encoding.UTF8, deadline.Token);
            return (result.ExitCode, result.StandardOutput, result.StandardError.Trim());
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return (-1, "", $"no answer within {timeout.TotalSeconds:F0} s");
        }
    }

    /// <summary>Runs a shell script on the host (`sh -c SCRIPT NAME ARGS...`).</summary>
    public Task<(int Exit, string Stdout, string Stderr)> ShellAsync(RemoteHost host, string script, IEnumerable<string> args, TimeSpan timeout,
        CancellationToken cancel, Stream? stdin = null) =>
        RunAsync(host, ["sh", "-c", script, "bench", .. args], timeout, cancel, stdin);

    /// <summary>Closes the host's multiplexing master, so the harness leaves no connection open behind it.</summary>
    public async Task CloseAsync(RemoteHost host)
    {
        var argv = Prefix(host).ToList();
        argv.InsertRange(argv.Count - 1, ["-O", "exit"]);
        try { await Cli.Wrap(argv[0]).WithArguments(argv.Skip(1)).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync(); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException) { }
    }

    /// <summary>One argument as a POSIX shell reads it back unchanged: in single quotes, each ' written as '\''.</summary>
    public static string Quote(string s) =>
        s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c)) ? s : "'" + s.Replace("'", "'\\''") + "'";
}
