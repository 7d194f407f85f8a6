using Bench.Harness.Report;
using Bench.Harness.Results;

namespace Bench.Harness.Tests;

/// <summary>What the summary says about a multi-host row's path: its link's rate, the input backlog, the client hosts' TIME_WAIT.</summary>
public class MultiHostNotesTests
{
    private static RunRecord Row(string workload, double reqPerS, int payload, string link, long backlog = 0, int timeWait = 0, int connections = 16) => new()
    {
        RunId = "t", Server = "cpp-epoll", Client = "cpp-epoll", Transport = "tcp", Workload = workload, Connections = connections, PayloadBytes = payload,
        Repeat = 1, Status = RunStatus.Ok, Ok = 1000, ReqPerS = reqPerS, ServerHost = "h0", ClientHosts = "h1:16", Link = link,
        BacklogDrops = backlog, TimeWaitBefore = timeWait,
    };

    private static IReadOnlyList<string> Notes(params RunRecord[] rows) => Anomalies.Explain(ExperimentStats.Group(rows).Single()).ToList();

    [Fact]
    public void a_rate_limited_links_share_of_its_rate_says_whether_the_link_or_the_server_set_the_figure()
    {
        const string link = "veth pair to a Linux bridge, one machine (test bed), tc tbf 1gbit each way";
        // 1,800 echoes of 64 KiB a second: 944 Mbit/s of payload each way, 94% of 1 Gbit/s.
        var full = Assert.Single(Notes(Row("persistent", 1800, 65536, link)));
        Assert.Equal("Each way the link carried 944 Mbit/s of payload, 94% of its 1gbit tc tbf rate (TCP/IP and Ethernet headers take most of the rest): " +
                     "the link's rate, not the server, sets this figure.", full);
        var share = Anomalies.LinkShare(ExperimentStats.Group([Row("persistent", 1800, 65536, link)]).Single())!.Value;
        Assert.Equal(1800 * 65536 * 8 / 1e9, share.Share, 9);
        Assert.EndsWith("the link is not what limits this figure.", Assert.Single(Notes(Row("persistent", 500, 65536, link))));
        // No rate on the link, or one machine: nothing to say.
        Assert.Empty(Notes(Row("persistent", 1800, 65536, "25GbE, one switch")));
    }

    [Fact]
    public void backlog_drops_and_a_burst_starting_among_time_wait_sockets_are_named()
    {
        Assert.Contains(Notes(Row("burst", 10000, 100, "test", backlog: 585)), n => n.StartsWith("The kernel dropped 585 packets at its per-CPU input backlog"));
        Assert.Contains(Notes(Row("burst", 10000, 100, "test", timeWait: 10013)), n => n.StartsWith("The client hosts held up to 10013 sockets in TIME_WAIT"));
        // A few left by the check pass are nothing to speak of: under a tenth of the burst.
        Assert.Empty(Notes(Row("burst", 10000, 100, "test", timeWait: 900, connections: 10000)));
    }
}
