using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace Memif.Tests;

/// <summary>The echo server and load client as the harness runs them: separate processes, contract arguments.</summary>
public partial class EchoProcessTests
{
    [GeneratedRegex(@"^RESULT ok=(\d+) failed=(\d+) wall_ns=(\d+) bytes=(\d+) conn_min=(\d+) conn_max=(\d+)(?: cpu_user_us=(\d+) cpu_sys_us=(\d+))?$", RegexOptions.Multiline)]
    private static partial Regex ResultLine();

    private static Process Start(params string[] args) => EchoServerProcess.StartProgram(args);

    [Theory]
    [InlineData("slave", "master", "memif-polling", 64)]
    [InlineData("slave", "master", "memif-interrupt", 100)]
    [InlineData("master", "slave", "memif-polling", 100)]
    [InlineData("slave", "master", "memif-polling", 3000)] // chained over two 2048-byte buffers
    public void Client_measures_verified_echoes_and_writes_samples(string serverRole, string clientRole, string workload, int frame)
    {
        string socket = Paths.Socket();
        string samples = Path.GetTempFileName();
        using var server = EchoServerProcess.Start(socket, "--role", serverRole);
        try
        {
            using var client = Start("client", "--memif-socket", socket, "--role", clientRole, "--payload", $"{frame}",
                "--workload", workload, "--duration", "0.5", "--warmup", "0.2", "--connections", "1", "--in-flight", "16", "--samples", samples, "--timeout", "20");
            string stdout = client.StandardOutput.ReadToEnd();
            string stderr = client.StandardError.ReadToEnd();
            Assert.True(client.WaitForExit(30_000));
            Assert.True(client.ExitCode == 0, $"client exit {client.ExitCode}: {stdout}\n{stderr}");
            var m = ResultLine().Match(stdout);
            Assert.True(m.Success, stdout);
            long ok = long.Parse(m.Groups[1].Value);
            Assert.True(ok > 0);
            Assert.Equal("0", m.Groups[2].Value);
            Assert.Equal(ok * frame, long.Parse(m.Groups[4].Value));
            Assert.Equal(ok * 8, new FileInfo(samples).Length); // nothing of the warm-up
            Assert.Contains("C# memif:", stdout);
            // The timed window opens with its own line, after the warm-up, and the client's CPU over it is reported.
            Assert.Single(stdout.Split('\n'), l => l.Trim() == "MEASURING");
            Assert.True(stdout.IndexOf("MEASURING", StringComparison.Ordinal) < m.Index);
            Assert.True(m.Groups[7].Success && long.Parse(m.Groups[7].Value) + long.Parse(m.Groups[8].Value) > 0, stdout);
        }
        finally
        {
            server.Stop();
            File.Delete(samples);
        }
    }

    [Fact]
    public void Slave_server_reconnects_for_each_new_master_and_reads_the_json_configs()
    {
        string socket = Paths.Socket();
        string dir = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Paths.EchoBinary())!, "../../../.."));
        using var server = EchoServerProcess.Start(socket, "--config", Path.Combine(dir, "s.json"));
        try
        {
            for (int round = 0; round < 3; round++)
            {
                using var client = Start("client", "--config", Path.Combine(dir, "c.json"), "--memif-socket", socket,
                    "--duration", "0.2", "--timeout", "20");
                string stdout = client.StandardOutput.ReadToEnd();
                client.WaitForExit();
                Assert.True(client.ExitCode == 0, stdout + client.StandardError.ReadToEnd());
                Assert.Matches(@"RESULT ok=[1-9]\d* failed=0 ", stdout);
            }
        }
        finally
        {
            server.Stop();
        }
    }

    [Fact]
    public void Slave_server_is_ready_before_the_master_exists_and_exits_on_sigterm()
    {
        string socket = Paths.Socket();
        using var server = EchoServerProcess.Start(socket); // default role: slave, retrying against a missing socket
        Thread.Sleep(200);
        server.Stop();
    }

    [Theory]
    [InlineData("--payload", "--payload", "ten")]
    [InlineData("--in-flight", "--in-flight", "0")]
    [InlineData("--in-flight is given twice", "--in-flight", "8", "--in-flight", "9")]
    [InlineData("unknown argument '--window'", "--window", "8")]
    [InlineData("secret", "--secret", "a-secret-longer-than-23-bytes")] // the library's check, reported as the user's error
    public void Bad_arguments_exit_2_with_one_line_on_stderr(string expected, params string[] args)
    {
        var (exit, stdout, stderr) = Run(["client", "--memif-socket", Paths.Socket(), "--timeout", "0.3", .. args]);
        Assert.Equal(2, exit);
        string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("Memif.Echo: ", line);
        Assert.Contains(expected, line);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void Connections_is_one_memif_connection_and_anything_else_says_where_the_load_goes()
    {
        var (exit, _, stderr) = Run("client", "--memif-socket", Paths.Socket(), "--connections", "16");
        Assert.Equal(2, exit);
        string line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("Memif.Echo: --connections must be 1", line);
        Assert.Contains("--queues", line);
        Assert.Contains("--in-flight", line);
    }

    [Fact]
    public void Help_prints_the_usage_on_stdout_and_exits_0()
    {
        var (exit, stdout, stderr) = Run("--help");
        Assert.Equal(0, exit);
        Assert.StartsWith("usage:", stdout);
        Assert.Contains("--in-flight", stdout);
        Assert.Equal("", stderr);
    }

    private static (int Exit, string Stdout, string Stderr) Run(params string[] args)
    {
        using var p = Start(args);
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), "did not exit");
        return (p.ExitCode, stdout, stderr.Result);
    }

    [Fact]
    public void Client_without_a_peer_reports_failure()
    {
        using var p = Start("client", "--memif-socket", Paths.Socket(), "--duration", "0.1", "--timeout", "0.3");
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(1, p.ExitCode);
        Assert.Matches(ResultLine(), stdout);
    }
}
