using System.Globalization;

namespace Bench.Harness.Results;

/// <summary>
/// One measured figure of a run, declared once: its runs.csv column, its name and unit in tables
/// and charts, how it is printed, which way is better, and the one-line legend under every table.
/// </summary>
public sealed record Figure(string Column, string Label, string Unit, string Format, bool HigherIsBetter, string Legend, Func<RunRecord, double?> Get)
{
    /// <summary>The table heading, e.g. "req/s" or "p99 us".</summary>
    public string Heading => Unit.Length == 0 ? Label : Label == Unit ? Unit : $"{Label} {Unit}";

    /// <summary>The chart axis label, e.g. "wall time (ms)".</summary>
    public string Axis => Unit.Length == 0 ? Label : $"{Label} ({Unit})";

    public string Print(double? v) => v is null ? "-" : v.Value.ToString(Format, CultureInfo.InvariantCulture);
}

/// <summary>Every figure a report, a chart or a comparison shows.</summary>
public static class Figures
{
    public static readonly Figure WallMs = new("wall_ms", "wall", "ms", "F1", false,
        "the client's wall time: a burst from its first connect to its last close, a timed run its measured duration", r => r.WallMs);
    public static readonly Figure ConnPerS = new("conn_per_s", "conn/s", "conn/s", "F0", true,
        "connections opened, echoed and closed per second (bursts)", r => r.ConnPerS);
    public static readonly Figure ReqPerS = new("req_per_s", "req/s", "req/s", "F0", true,
        "requests (gRPC calls, memif frames) verified per second", r => r.ReqPerS);
    public static readonly Figure P50 = new("lat_p50_us", "p50", "us", "F0", false,
        "median latency, from every request's raw sample (open loop: from its intended send time)", r => r.LatP50Us);
    public static readonly Figure P90 = new("lat_p90_us", "p90", "us", "F0", false, "90th percentile latency", r => r.LatP90Us);
    public static readonly Figure P99 = new("lat_p99_us", "p99", "us", "F0", false, "99th percentile latency", r => r.LatP99Us);
    public static readonly Figure P999 = new("lat_p999_us", "p99.9", "us", "F0", false, "99.9th percentile latency", r => r.LatP999Us);
    public static readonly Figure ServerCpuPerRequest = new("server_cpu_us_per_req", "server CPU", "us/req", "F1", false,
        "server CPU time (user + kernel) per verified request: its service demand", r => r.ServerCpuUsPerReq);
    public static readonly Figure ServerUserPerRequest = new("server_user_us_per_req", "server user", "us/req", "F1", false,
        "the server's CPU time in its own code and runtime (user mode) per verified request", r => PerRequest(r.ServerUserMs * 1000, r, cpu: true));
    public static readonly Figure ServerKernelPerRequest = new("server_sys_us_per_req", "server kernel", "us/req", "F1", false,
        "the server's CPU time in the kernel (system calls, the TCP stack) per verified request", r => PerRequest(r.ServerSysMs * 1000, r, cpu: true));
    public static readonly Figure SyscallsPerRequest = new("server_syscalls_per_req", "syscalls", "per req", "F2", false,
        "the server's system calls per verified request over the timed window (perf stat, --syscalls)", r => PerRequest(r.ServerSyscalls, r));
    public static readonly Figure SwitchesPerRequest = new("server_ctx_switches_per_req", "switches", "per req", "F3", false,
        "the server's context switches (it blocked, or was preempted) per verified request", r => PerRequest(r.ServerContextSwitches, r));
    public static readonly Figure ClientCpuPerRequest = new("client_cpu_us_per_req", "client CPU", "us/req", "F1", false,
        "the load generator's CPU time per verified request", r => r.ClientCpuUsPerReq);
    public static readonly Figure ServerRss = new("server_peak_rss_kb", "server RSS", "MiB", "F0", false,
        "the server's peak resident memory (VmHWM of its process tree)", r => r.ServerPeakRssKb / 1024.0);
    public static readonly Figure WarmupS = new("warmup_s", "warm-up", "s", "F1", false,
        "seconds of unrecorded load before the measured repeats", r => r.WarmupS);

    /// <summary>
    /// A server count per verified request of the row. CPU times come in 10 ms ticks, so, as for
    /// the CPU per request columns, a row with under 100 ms of server CPU gives none.
    /// </summary>
    private static double? PerRequest(double? total, RunRecord r, bool cpu = false) =>
        total is null || r.Ok <= 0 || (cpu && (r.ServerUserMs + r.ServerSysMs ?? 0) < 100) ? null : total / r.Ok;

    /// <summary>Every figure, in the order a report lists them.</summary>
    public static readonly IReadOnlyList<Figure> All = [WallMs, ConnPerS, ReqPerS, P50, P90, P99, P999, ServerCpuPerRequest, ServerUserPerRequest, ServerKernelPerRequest,
        SyscallsPerRequest, SwitchesPerRequest, ClientCpuPerRequest, ServerRss, WarmupS];

    /// <summary>The percentiles a latency chart draws, in order.</summary>
    public static readonly IReadOnlyList<Figure> Percentiles = [P50, P90, P99, P999];
}
