namespace Bench.Harness.Machine;

/// <summary>What a reader needs to know about the machine a result set came from.</summary>
public sealed record MachineFacts(
    string CpuModel, int Cores, string Kernel, string FdLimits, string SoMaxConn, string SynBacklog,
    string PortRange, string TwReuse, IReadOnlyDictionary<string, string> Toolchains)
{
    public static async Task<MachineFacts> ReadAsync()
    {
        var model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        var (soft, hard) = Limits.FileDescriptors();
        return new MachineFacts(model, Environment.ProcessorCount, Limits.ReadSysctl("/proc/sys/kernel/osrelease"),
            $"{soft} soft / {hard} hard", Limits.ReadSysctl("/proc/sys/net/core/somaxconn"),
            Limits.ReadSysctl("/proc/sys/net/ipv4/tcp_max_syn_backlog"), Limits.ReadSysctl("/proc/sys/net/ipv4/ip_local_port_range"),
            Limits.ReadSysctl("/proc/sys/net/ipv4/tcp_tw_reuse"), await ToolchainVersions.ReadAsync());
    }

    /// <summary>One line for chart captions.</summary>
    public string Caption => $"{CpuModel}, {Cores} cores, Linux {Kernel}";

    public IEnumerable<(string Key, string Value)> Rows()
    {
        yield return ("CPU", CpuModel);
        yield return ("cores", Cores.ToString());
        yield return ("kernel", Kernel);
        yield return ("open files (ulimit -n)", FdLimits);
        yield return ("net.core.somaxconn", SoMaxConn);
        yield return ("net.ipv4.tcp_max_syn_backlog", SynBacklog);
        yield return ("ephemeral ports", PortRange);
        yield return ("net.ipv4.tcp_tw_reuse", TwReuse);
        foreach (var (tool, version) in Toolchains.OrderBy(t => t.Key)) yield return (tool, version);
    }
}
