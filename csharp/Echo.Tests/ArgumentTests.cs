using System.Diagnostics;

namespace Bench.Echo.Tests;

/// <summary>How csharp-echo takes its arguments, and how it refuses bad ones: status 2, one line on stderr.</summary>
public sealed class ArgumentTests
{
    /// <summary>The echo binary built beside this test assembly (same configuration and framework).</summary>
    internal static string Binary
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
            string tfm = dir.Name, configuration = dir.Parent!.Name;
            var csharp = dir.Parent!.Parent!.Parent!.Parent!.FullName;
            var path = Path.Combine(csharp, "Echo", "bin", configuration, tfm, "csharp-echo");
            Assert.True(File.Exists(path), $"csharp-echo not built: {path}");
            return path;
        }
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(params string[] args)
    {
        var info = new ProcessStartInfo(Binary) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(deadline.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    [Theory]
    [InlineData("--connections must be a whole number from 1 to 1000000, not 'many'", "client", "--port", "9", "--connections", "many")]
    [InlineData("--port is required", "client")]
    [InlineData("unknown argument '--in-flight'", "client", "--port", "9", "--in-flight", "10")] // not a raw TCP echo option
    [InlineData("--payload is given twice", "client", "--port", "9", "--payload", "1", "--payload", "2")]
    [InlineData("--port needs a value", "client", "--port", "--connections", "1")]
    [InlineData("--duration must be a number from 0.001 to 86400, not 'NaN'", "client", "--port", "9", "--duration", "NaN")]
    [InlineData("--warmup must be a number from 0 to 86400, not '-1'", "client", "--port", "9", "--warmup", "-1")]
    [InlineData("--port must be a whole number from 0 to 65535, not '65536'", "server", "--port", "65536")]
    [InlineData("--design must be zerobyte, async, saea or pipelines, not 'threads'", "server", "--design", "threads")]
    [InlineData("--host must be an IP address to listen on, not 'nowhere'", "server", "--host", "nowhere")]
    [InlineData("the first argument must be 'server' or 'client' (--help for usage)", "serve")]
    public async Task A_bad_argument_exits_2_with_one_line_on_stderr(string message, params string[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(args);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        Assert.Equal($"csharp-echo: {message}", Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public async Task A_host_that_does_not_resolve_is_the_users_error()
    {
        var (exit, _, stderr) = await RunAsync("client", "--port", "9", "--host", "no-such-host.invalid", "--timeout", "1");
        Assert.Equal(2, exit);
        Assert.StartsWith("csharp-echo: cannot resolve --host 'no-such-host.invalid'", Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public async Task Help_prints_the_usage_on_stdout_and_exits_0()
    {
        var (exit, stdout, stderr) = await RunAsync("client", "--help");
        Assert.Equal(0, exit);
        Assert.StartsWith("usage: csharp-echo server", stdout);
        Assert.Equal("", stderr);
    }
}
