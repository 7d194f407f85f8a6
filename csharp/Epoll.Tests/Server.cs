using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Bench.Epoll.Tests;

/// <summary>The built csharp-epoll server as a process: started through a shell line (ulimit, taskset), its ready line read, its stderr kept.</summary>
internal sealed class Server : IAsyncDisposable
{
    public static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly List<string> _stderr = [];
    private readonly SemaphoreSlim _changed = new(0);

    public IPEndPoint Endpoint { get; }

    /// <summary>The csharp-epoll binary built beside this test assembly (same configuration and framework).</summary>
    public static string Binary
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
            string tfm = dir.Name, configuration = dir.Parent!.Name;
            var csharp = dir.Parent!.Parent!.Parent!.Parent!.FullName;
            var path = Path.Combine(csharp, "Epoll", "bin", configuration, tfm, "csharp-epoll");
            Assert.True(File.Exists(path), $"csharp-epoll not built: {path}");
            return path;
        }
    }

    private Server(Process process, IPEndPoint endpoint)
    {
        _process = process;
        Endpoint = endpoint;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Starts `csharp-epoll server` behind <paramref name="prefix"/> (a shell line such as `ulimit -n 128 &&` or `exec taskset -c 0`).</summary>
    public static async Task<Server> StartAsync(string prefix = "exec")
    {
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-c", $"{prefix} \"$0\" \"$@\"", Binary, "server", "--host", "127.0.0.1", "--port", "0" })
            info.ArgumentList.Add(a);
        var process = Process.Start(info)!;
        var ready = await process.StandardOutput.ReadLineAsync().WaitAsync(Bound);
        if (ready is null || !ready.StartsWith("READY tcp 127.0.0.1:", StringComparison.Ordinal))
        {
            process.Kill();
            Assert.Fail($"no ready line: '{ready}': {await process.StandardError.ReadToEndAsync()}");
        }
        var server = new Server(process, IPEndPoint.Parse(ready["READY tcp ".Length..]));
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (server._stderr) server._stderr.Add(e.Data);
            server._changed.Release();
        };
        process.BeginErrorReadLine();
        return server;
    }

    public IReadOnlyList<string> StderrLines
    {
        get { lock (_stderr) return [.. _stderr]; }
    }

    public async Task<bool> WaitForStderrAsync(Func<string, bool> match)
    {
        var deadline = Stopwatch.StartNew();
        while (!StderrLines.Any(match))
        {
            var left = Bound - deadline.Elapsed;
            if (left <= TimeSpan.Zero || !await _changed.WaitAsync(left)) return StderrLines.Any(match);
        }
        return true;
    }

    /// <summary>SIGTERM (or the signal given), then its exit status (the contract: 0, within a second).</summary>
    public async Task<int> StopAsync(int signal = 15)
    {
        Assert.Equal(0, kill(_process.Id, signal));
        using var deadline = new CancellationTokenSource(Bound);
        await _process.WaitForExitAsync(deadline.Token);
        return _process.ExitCode;
    }

    public override string ToString() => "server stderr:\n" + string.Join('\n', StderrLines);

    public async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = new CancellationTokenSource(Bound);
        await socket.ConnectAsync(Endpoint, deadline.Token);
        return socket;
    }

    /// <summary>Sends <paramref name="length"/> bytes and reads them back, byte for byte.</summary>
    public static async Task AssertEchoesAsync(Socket socket, int length, int seed)
    {
        var sent = new byte[length];
        for (int i = 0; i < length; i++) sent[i] = (byte)((seed + i) % 251);
        var got = new byte[length];
        using var deadline = new CancellationTokenSource(Bound);
        // Send and read together: a large payload need not fit in the socket buffers one way.
        var send = socket.SendAsync(sent, SocketFlags.None, deadline.Token).AsTask();
        int read = 0;
        while (read < length)
        {
            int n = await socket.ReceiveAsync(got.AsMemory(read), SocketFlags.None, deadline.Token);
            Assert.True(n > 0, $"the server closed after {read} of {length} bytes");
            read += n;
        }
        Assert.Equal(length, await send);
        Assert.Equal(sent, got);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill();
        await _process.WaitForExitAsync();
        _process.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
