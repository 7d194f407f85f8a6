using System.Globalization;

namespace Bench.Harness.Report;

/// <summary>Plain-words notes on what the kernel's counters and the cores say about a figure.</summary>
public static class Anomalies
{
    public static IEnumerable<string> Explain(ExperimentStats e)
    {
        var overflows = e.Runs.Sum(r => r.ListenOverflows ?? 0);
        var synRetrans = e.Runs.Sum(r => r.SynRetrans ?? 0);
        if (overflows > 0 || synRetrans > 0)
            yield return Invariant($"The listen queue overflowed {overflows} times and the kernel retransmitted {synRetrans} SYNs over {e.Runs.Count} runs. ") +
                                   "A dropped SYN waits out the client's 1 s retransmit timer (then 3 s), so these wall times and the tail latency include " +
                                   "whole seconds of waiting that are not server work: compare the min with the median.";
        var backlog = e.Runs.Sum(r => r.BacklogDrops ?? 0);
        if (backlog > 0)
            yield return Invariant($"The kernel dropped {backlog} packets at its per-CPU input backlog (net.core.netdev_max_backlog) over {e.Runs.Count} runs: ") +
                         "loopback and veth packets all queue there, and a SYN, SYN-ACK or ACK dropped there costs the same 1 s retransmit as a listen queue " +
                         "overflow. That is the packet path's limit on this machine (its cores busy), not the server's; the counter is the whole machine's, other work included.";
        if (e.Runs[0].ServerHost.Length > 0 && e.Workload.OneConnectionPerRequest && e.Runs.Max(r => r.TimeWaitBefore ?? 0) is var tw and > 0 &&
            tw >= e.Runs[0].Connections / 10)
            yield return Invariant($"The client hosts held up to {tw} sockets in TIME_WAIT when a burst started (the warm-up's and earlier bursts'). ") +
                         "Off loopback Linux reuses none of them (tcp_tw_reuse=2 is loopback only), so each connect() searches past them for a free port " +
                         "and the clients' kernel time, not the network or the server, grows with them: run bursts with --warmups 0, or 60 s apart.";
        if (LinkShare(e) is { } link)
            yield return Invariant($"Each way the link carried {link.Mbits:F0} Mbit/s of payload, {link.Share * 100:F0}% of its {link.Rate} tc tbf rate ") +
                         (link.Share >= LinkBound
                             ? "(TCP/IP and Ethernet headers take most of the rest): the link's rate, not the server, sets this figure."
                             : "(headers included it would still be short of it): the link is not what limits this figure.");
        var serverSteal = e.Runs.Max(r => r.ServerCoreSteal ?? 0);
        var clientSteal = e.Runs.Max(r => r.ClientCoreSteal ?? 0);
        if (Math.Max(serverSteal, clientSteal) >= NoticeableSteal)
            yield return Invariant($"The hypervisor took up to {serverSteal * 100:0}% of the server's core and {clientSteal * 100:0}% of the client's in these runs (steal): ") +
                         "this machine's cores were not all its own, so these figures are lower and noisier than the code's; compare rows from runs without this note.";
        if (e.Runs.Where(r => r.CoreRoundTripNs > 0).OrderBy(r => r.CoreRoundTripNs).ToList() is { Count: > 1 } linked &&
            linked[^1].CoreRoundTripNs >= linked[0].CoreRoundTripNs * MovedCores)
            yield return Invariant($"A cache line's round trip between the server's core and the client's ranged {linked[0].CoreRoundTripNs:0}-{linked[^1].CoreRoundTripNs:0} ns before these repeats ") +
                         Invariant($"(the repeat after the shortest ran at {linked[0].ReqPerS:0} req/s, after the longest at {linked[^1].ReqPerS:0}): ") +
                         "the hypervisor moved this machine's two vCPUs between runs (steal does not show that), and whatever crosses between the cores pays the distance.";
        if (e.Bound == Run.Bottleneck.Client)
            yield return $"The load generator's core ({e.Generator}) was saturated and the server's was not: this figure is the load generator's limit, not the server's.";
        if (e.Bound == Run.Bottleneck.Both)
            yield return "Both cores were saturated: the client and the server share the limit.";
        if (e.Failed > 0)
            yield return Invariant($"{e.Failed} requests failed; failed runs are left out of the figures.");
        if (e.Wall is { N: > 1 } wall && wall.RelativeSpread > 0.25 && overflows == 0 && synRetrans == 0)
            yield return Invariant($"The repeats spread by {wall.RelativeSpread * 100:0}% of the median: differences smaller than that are noise.");
        foreach (var status in e.Statuses) yield return status;
    }

    /// <summary>The ratio of the slowest to the fastest core-to-core round trip of an experiment's repeats from which the summary says the cores moved.</summary>
    public const double MovedCores = 1.5;

    /// <summary>A core's share of a run stolen by the hypervisor from which the summary says so: above the noise of a quiet VM.</summary>
    public const double NoticeableSteal = 0.05;

    /// <summary>Payload at this share of a rate-limited link's rate or more: the rest is headers (a 1448-byte segment in a 1514-byte frame is 95.6%), so the link is full.</summary>
    public const double LinkBound = 0.85;

    /// <summary>
    /// A multi-host echo over a link with a tc tbf rate (the test bed's --rate: "tc tbf 1gbit each
    /// way" in the link's words): the payload bits per second each way (every request's payload
    /// goes out and comes back) at the median request rate, and their share of the rate.
    /// </summary>
    public static (double Mbits, double Share, string Rate)? LinkShare(ExperimentStats e)
    {
        var link = e.Runs[0].Link;
        var m = System.Text.RegularExpressions.Regex.Match(link, @"tc tbf ([0-9.]+)(bit|kbit|mbit|gbit)\b");
        if (!m.Success || e.ReqPerS is not { } rate || e.Runs[0].PayloadBytes <= 0) return null;
        var limit = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * m.Groups[2].Value switch
        {
            "bit" => 1, "kbit" => 1e3, "mbit" => 1e6, _ => 1e9,
        };
        var bits = rate.Median * e.Runs[0].PayloadBytes * 8;
        return (bits / 1e6, bits / limit, m.Groups[1].Value + m.Groups[2].Value);
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
