using Bench.Harness.Machine;
using Bench.Harness.Processes;
using Bench.Harness.Run;

namespace Bench.Harness.Tests;

public class MachineTests
{
    private const string Netstat = """
        TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPTimeouts TCPSynRetrans
        TcpExt: 1 2 37 41 5 33
        IpExt: InNoRoutes InTruncatedPkts
        IpExt: 0 0
        """;
    private const string Snmp = """
        Ip: Forwarding DefaultTTL
        Ip: 1 64
        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
        Tcp: 1 200 120000 -1 10 10 0 0 4 100 100 12 0 0 0
        """;

    [Fact]
    public void tcp_counters_are_read_from_netstat_and_snmp_tables()
    {
        var c = TcpCounters.Parse(Netstat, Snmp);
        Assert.Equal(new TcpCounters(37, 41, 33, 12, 5), c);
        Assert.Equal(new TcpCounters(30, 40, 30, 10, 0), c - new TcpCounters(7, 1, 3, 2, 5));
    }

    [Fact]
    public void input_backlog_drops_are_the_second_column_of_softnet_stat_summed_over_the_cpus_in_hex()
    {
        const string softnet = """
            010389a9 0000012b 00000005 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000
            00f1bd91 00000010 00000005 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000
            """;
        Assert.Equal(0x12b + 0x10, TcpCounters.BacklogDropped(softnet));
        var c = TcpCounters.Parse(Netstat, Snmp, softnet);
        Assert.Equal(new TcpCounters(37, 41, 33, 12, 5, 315), c);
        Assert.Equal(new TcpCounters(30, 40, 30, 10, 0, 300), c - new TcpCounters(7, 1, 3, 2, 5, 15));
        Assert.Equal(new TcpCounters(74, 82, 66, 24, 10, 630), c + c);
        Assert.True(TcpCounters.Read().BacklogDrops >= 0);
    }

    [Fact]
    public void live_proc_files_parse()
    {
        var c = TcpCounters.Read();
        Assert.True(c.RetransSegs >= 0 && c.ListenOverflows >= 0);
        Assert.True(TcpCounters.CountTimeWait() >= 0);
        var cpus = ProcFs.CpuTimes();
        Assert.Equal(Environment.ProcessorCount, cpus.Count);
        Assert.All(cpus.Values, v => Assert.True(v.Total >= v.Busy && v.Busy > 0));
    }

    [Fact]
    public void process_usage_counts_cpu_and_peak_memory_of_the_tree()
    {
        var self = ProcFs.ReadTree(Environment.ProcessId);
        Assert.NotNull(self);
        Assert.True(self.Value.PeakRssKb > 1000);
        Assert.True(self.Value.CpuMs > 0);
        Assert.Null(ProcFs.ReadTree(int.MaxValue - 1));
    }

    [Fact]
    public async Task descendants_include_grandchildren()
    {
        await using var p = ManagedProcess.Start("tree", ["bash", "-c", "sleep 30 & sleep 30 & echo started; wait"], Path.GetTempPath());
        await p.WaitForLineAsync(l => l == "started", TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(2, ProcFs.Descendants(p.Pid).Count());
    }

    [Theory]
    [InlineData(0.95, 0.30, "server")]
    [InlineData(0.40, 0.99, "client")]
    [InlineData(0.97, 0.97, "both")]
    [InlineData(0.50, 0.60, "neither")]
    public void bottleneck_names_the_saturated_core(double server, double client, string expected) =>
        Assert.Equal(expected, Bottleneck.Classify(server, client));

    [Fact]
    public void file_descriptor_limit_within_the_hard_limit_is_raised()
    {
        var (_, hard) = Limits.FileDescriptors();
        Assert.Null(Limits.EnsureFileDescriptors((int)Math.Min(hard, 10_000)));
        Assert.True(Limits.FileDescriptors().Soft >= Math.Min(hard, 10_000));
        var message = Limits.EnsureFileDescriptors((int)Math.Min(hard + 1, int.MaxValue));
        Assert.NotNull(message);
        Assert.Contains("hard limit", message);
    }

    [Fact]
    public async Task machine_facts_name_cpu_kernel_and_limits()
    {
        var facts = await MachineFacts.ReadAsync();
        Assert.Equal(Environment.ProcessorCount, facts.Cores);
        Assert.NotEqual("n/a", facts.SoMaxConn);
        Assert.Contains(facts.Rows(), r => r.Key == "dotnet" && r.Value != "not installed");
    }
}
