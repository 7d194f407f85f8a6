using System.Buffers.Binary;
using System.Globalization;
using GrpcBench.Protos;

namespace GrpcBench.Client;

/// <summary>The human report, the samples file and the contract's RESULT line.</summary>
static class Report
{
    public static void Write(ClientSettings s, RunResult run, TextWriter output)
    {
        var ok = run.Slots.Sum(x => x.Ok);
        var total = ok + run.Failed;
        var bytes = run.Slots.Sum(x => x.Bytes);
        var seconds = run.WallTicks / (double)System.Diagnostics.Stopwatch.Frequency;
        var samples = run.Slots.SelectMany(x => x.Samples).ToArray();
        Array.Sort(samples);
        var rate = seconds > 0 ? ok / seconds : 0;
        var inv = CultureInfo.InvariantCulture;

        output.WriteLine(string.Create(inv,
            $"C# gRPC load ({WorkloadName(s.Workload)}, service {s.Service.ToString().ToLowerInvariant()}, {s.Describe()}, " +
            $"{s.InFlight} calls on {s.Connections} connection(s){(s.StreamDepth > 1 ? $", {s.StreamDepth} per stream" : "")}, {s.Payload} B, {(s.Rate > 0 ? $"open loop {s.Rate:0}/s" : "closed loop")}, " +
            $"{(s.Engine == EngineKind.Lean ? "lean HTTP/2 engine" : "Grpc.Net.Client engine")})"));
        output.WriteLine(string.Create(inv, $"  total         {total}"));
        output.WriteLine(string.Create(inv, $"  succeeded     {ok}"));
        output.WriteLine(string.Create(inv, $"  failed        {run.Failed}{Kinds(run)}"));
        output.WriteLine(string.Create(inv, $"  success rate  {(total > 0 ? 100.0 * ok / total : 0):0.00} %"));
        output.WriteLine(string.Create(inv, $"  warm-up       {run.WarmupSeconds:0.0} s{(run.WarmupStable ? "" : " (cap reached, rate not steady)")}"));
        output.WriteLine(string.Create(inv, $"  duration      {seconds:0.000} s"));
        output.WriteLine(string.Create(inv, $"  requests/s    {rate:0}"));
        if (samples.Length > 0)
        {
            output.WriteLine(string.Create(inv,
                $"  latency       avg {Ms(samples.Average())}  min {Ms(samples[0])}  max {Ms(samples[^1])}"));
            output.WriteLine(string.Create(inv,
                $"  percentiles   p50 {Ms(Pct(samples, 50))}  p90 {Ms(Pct(samples, 90))}  p99 {Ms(Pct(samples, 99))}  p99.9 {Ms(Pct(samples, 99.9))}"));
        }
        if (ok > 0)
            output.WriteLine(string.Create(inv,
                $"  client cpu    {ClientCpuUs(run) / ok:0.0} us per call ({ClientCpuUs(run) / 1e6 / Math.Max(seconds, 1e-9) * 100:0} % of one core)"));
        var oneWay = run.Slots.SelectMany(x => x.OneWay).ToArray();
        if (oneWay.Length > 0)
        {
            Array.Sort(oneWay);
            output.WriteLine(string.Create(inv,
                $"  one-way       p50 {Ms(Pct(oneWay, 50))}  p99 {Ms(Pct(oneWay, 99))}  (server receive - client send, wall clock)"));
        }
        foreach (var algorithm in Enum.GetValues<SignatureAlgorithm>().Where(a => a != SignatureAlgorithm.Unspecified))
        {
            var n = run.Slots.Sum(x => x.AlgorithmOk[(int)algorithm]);
            if (n == 0) continue;
            var avg = run.Slots.Sum(x => x.AlgorithmNanos[(int)algorithm]) / (double)n;
            output.WriteLine(string.Create(inv, $"  {algorithm,-18} {n} ok, {(seconds > 0 ? n / seconds : 0):0} req/s, avg {Ms(avg)}"));
        }
        var avgAll = samples.Length > 0 ? samples.Average() : 0;
        output.WriteLine(string.Create(inv,
            $"C# gRPC: {s.InFlight} calls, total time = {seconds:0.00}s, {rate:0} req/s, avg = {Ms(avgAll)}"));

        var perSlot = run.Slots.Select(x => x.Ok).ToArray();
        output.WriteLine(string.Create(inv,
            $"RESULT ok={ok} failed={run.Failed} wall_ns={(long)(seconds * 1e9)} bytes={bytes} conn_min={perSlot.Min()} conn_max={perSlot.Max()} " +
            $"cpu_user_us={run.ClientCpu.UserUs} cpu_sys_us={run.ClientCpu.SysUs}"));
        output.Flush();
    }

    private static double ClientCpuUs(RunResult run) => run.ClientCpu.UserUs + run.ClientCpu.SysUs;

    /// <summary>Raw little-endian u64 nanoseconds, one per successful request, no header.</summary>
    public static void WriteSamples(string path, RunResult run)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Span<byte> buffer = stackalloc byte[8];
        foreach (var slot in run.Slots)
        foreach (var nanos in slot.Samples)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(buffer, (ulong)Math.Max(0, nanos));
            file.Write(buffer);
        }
    }

    public static string WorkloadName(Workload w) => w switch
    {
        Workload.Unary => "grpc-unary",
        Workload.Stream => "grpc-stream",
        _ => "grpc-crypto",
    };

    private static string Kinds(RunResult run) =>
        run.FailureKinds.Count == 0 ? "" : " (" + string.Join(", ", run.FailureKinds.Select(k => $"{k.Key}: {k.Value}")) + ")";

    private static long Pct(long[] sorted, double p) =>
        sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static string Ms(double nanos) => (nanos / 1e6).ToString("0.000", CultureInfo.InvariantCulture) + " ms";
}
