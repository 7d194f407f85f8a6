using CsvHelper.Configuration.Attributes;

namespace Bench.Harness.Results;

/// <summary>
/// One row of runs.csv: one client run against one server. The column names are the stable
/// schema documented in docs/results.md; add columns at the end, never rename or reorder.
/// </summary>
public sealed class RunRecord
{
    [Name("run_id")] public string RunId { get; set; } = "";
    [Name("timestamp")] public DateTimeOffset Timestamp { get; set; }
    [Name("server")] public string Server { get; set; } = "";
    [Name("client")] public string Client { get; set; } = "";
    [Name("transport")] public string Transport { get; set; } = "tcp";
    [Name("workload")] public string Workload { get; set; } = "";
    [Name("connections")] public int Connections { get; set; }
    [Name("payload_bytes")] public int PayloadBytes { get; set; }
    [Name("rate")] public double Rate { get; set; }
    [Name("duration_s")] public double DurationS { get; set; }
    [Name("repeat")] public int Repeat { get; set; }
    [Name("ok")] public long Ok { get; set; }
    [Name("failed")] public long Failed { get; set; }
    [Name("wall_ms")] public double? WallMs { get; set; }
    [Name("conn_per_s")] public double? ConnPerS { get; set; }
    [Name("req_per_s")] public double? ReqPerS { get; set; }
    [Name("lat_p50_us")] public double? LatP50Us { get; set; }
    [Name("lat_p90_us")] public double? LatP90Us { get; set; }
    [Name("lat_p99_us")] public double? LatP99Us { get; set; }
    [Name("lat_p999_us")] public double? LatP999Us { get; set; }
    [Name("lat_max_us")] public double? LatMaxUs { get; set; }
    [Name("lat_mean_us")] public double? LatMeanUs { get; set; }
    [Name("conn_min_req")] public long? ConnMinReq { get; set; }
    [Name("conn_max_req")] public long? ConnMaxReq { get; set; }
    [Name("server_user_ms")] public double? ServerUserMs { get; set; }
    [Name("server_sys_ms")] public double? ServerSysMs { get; set; }
    [Name("server_peak_rss_kb")] public long? ServerPeakRssKb { get; set; }
    [Name("client_user_ms")] public double? ClientUserMs { get; set; }
    [Name("client_sys_ms")] public double? ClientSysMs { get; set; }
    [Name("client_peak_rss_kb")] public long? ClientPeakRssKb { get; set; }
    [Name("server_cpu_us_per_req")] public double? ServerCpuUsPerReq { get; set; }
    [Name("client_cpu_us_per_req")] public double? ClientCpuUsPerReq { get; set; }
    [Name("server_core_busy")] public double? ServerCoreBusy { get; set; }
    [Name("client_core_busy")] public double? ClientCoreBusy { get; set; }
    [Name("bound")] public string Bound { get; set; } = "";
    [Name("listen_overflows")] public long? ListenOverflows { get; set; }
    [Name("listen_drops")] public long? ListenDrops { get; set; }
    [Name("syn_retrans")] public long? SynRetrans { get; set; }
    [Name("retrans_segs")] public long? RetransSegs { get; set; }
    [Name("tcp_timeouts")] public long? TcpTimeouts { get; set; }
    [Name("timewait_before")] public int? TimeWaitBefore { get; set; }
    [Name("server_cpus")] public string ServerCpus { get; set; } = "";
    [Name("client_cpus")] public string ClientCpus { get; set; } = "";
    [Name("load_tool")] public string LoadTool { get; set; } = "";
    [Name("warmup_s")] public double? WarmupS { get; set; }
    [Name("status")] public string Status { get; set; } = "";
    [Name("error")] public string Error { get; set; } = "";
    [Name("warmup_steady")] public bool? WarmupSteady { get; set; }
    [Name(InFlightColumn)] public int? InFlight { get; set; }
    /// <summary>What the CPU, core-busy and bound figures cover: <see cref="CpuWindows"/>.</summary>
    [Name("cpu_window")] public string CpuWindow { get; set; } = "";
    /// <summary>The server's context switches (voluntary and involuntary, every thread) over the same window as its CPU time.</summary>
    [Name("server_ctx_switches")] public long? ServerContextSwitches { get; set; }
    /// <summary>The server's system calls over the client's timed window; only with --syscalls (perf stat), empty otherwise.</summary>
    [Name("server_syscalls")] public long? ServerSyscalls { get; set; }
    /// <summary>Multi-host runs (a hosts file): the server's host; empty on one machine.</summary>
    [Name("server_host")] public string ServerHost { get; set; } = "";
    /// <summary>Multi-host runs: each client host with its share of the connections, `host:connections` separated by spaces.</summary>
    [Name("client_hosts")] public string ClientHosts { get; set; } = "";
    /// <summary>Multi-host runs: the hosts file's words on the link between the hosts.</summary>
    [Name("link")] public string Link { get; set; } = "";
    /// <summary>Multi-host runs: per host, over the timed window, its program's CPU and peak memory, its cores' busy share and its TCP counters.</summary>
    [Name("host_usage")] public string HostUsage { get; set; } = "";
    /// <summary>Packets the kernel dropped at its per-CPU input backlog during the run (/proc/net/softnet_stat); a multi-host run counts each kernel once.</summary>
    [Name("backlog_drops")] public long? BacklogDrops { get; set; }
    /// <summary>The share of the timed window the hypervisor took from the server's core (steal in /proc/stat); inside server_core_busy.</summary>
    [Name("server_core_steal")] public double? ServerCoreSteal { get; set; }
    /// <summary>The same for the client's core (multi-host: the most of any client host's).</summary>
    [Name("client_core_steal")] public double? ClientCoreSteal { get; set; }
    /// <summary>A cache line's round trip in ns between the server's core and the client's, just before the run (Machine/CoreLink.cs).</summary>
    [Name("core_round_trip_ns")] public double? CoreRoundTripNs { get; set; }

    public const string InFlightColumn = "in_flight";

    /// <summary>What made the load: the client implementation, or the independent tool when none ran.</summary>
    [Ignore] public string Generator => Client.Length > 0 ? Client : LoadTool;

    /// <summary>What a report groups repeats by: everything that defines the experiment, nothing it measured.</summary>
    [Ignore] public ExperimentKey Experiment => new(Server, Generator, Transport, Workload, Connections, InFlight ?? Connections, PayloadBytes, Rate);

    public readonly record struct ExperimentKey(string Server, string Generator, string Transport, string Workload,
        int Connections, int InFlight, int Payload, double Rate);

    /// <summary>
    /// Rows written by older harnesses, read in today's terms: before in_flight existed a variant's
    /// connections column held its requests in flight, and an independent tool's rows named the
    /// tool as their client.
    /// </summary>
    public void UpgradeLegacy()
    {
        Workloads.Workload.FromResults(Workload).UpgradeLegacyRow(this);
        if (Client == LoadTool && LoadTools.IndependentLoadTools.Find(Client) is not null) Client = "";
    }
}

/// <summary>The values of the cpu_window column.</summary>
public static class CpuWindows
{
    /// <summary>The client's timed window: from its MEASURING line to its RESULT line, its own CPU as it reported it.</summary>
    public const string Timed = "timed";
    /// <summary>The client's whole life, start-up and connecting included (a client that prints no MEASURING line, or rows before it existed).</summary>
    public const string Process = "process";
}

/// <summary>The values of the status column.</summary>
public static class RunStatus
{
    public const string Ok = "ok";                       // every request echoed exactly
    public const string Failed = "failed";               // the client reported failed requests
    public const string BuildFailed = "build-failed";
    public const string VerifyFailed = "verify-failed";  // the byte-exact check before timing failed
    public const string ServerFailed = "server-failed";  // never ready, exited early, or died mid-run
    public const string ClientFailed = "client-failed";  // crashed, or broke the contract (no RESULT line)
    public const string Timeout = "timeout";             // the client passed its deadline and was killed
    public const string Skipped = "skipped";             // a limit of this machine makes the run impossible
}

public static class RunRecordExtensions
{
    public static void Absorb(this RunRecord row, Machine.TcpCounters delta)
    {
        row.ListenOverflows = delta.ListenOverflows;
        row.ListenDrops = delta.ListenDrops;
        row.SynRetrans = delta.SynRetrans;
        row.RetransSegs = delta.RetransSegs;
        row.TcpTimeouts = delta.Timeouts;
        row.BacklogDrops = delta.BacklogDrops;
    }
}
