using Bench.Harness.Build;
using Bench.Harness.Catalog;

namespace Bench.Harness.Remote;

/// <summary>
/// The hosts of a multi-host run once checked and supplied: each host's facts, and what was
/// shipped there. Made by <see cref="PrepareAsync"/> before anything is timed.
/// </summary>
public sealed record MultiHost(HostsFile Hosts, Ssh Ssh, Shipper Shipper, IReadOnlyList<HostFacts> Facts)
{
    /// <summary>
    /// Verify every host against the implementations and the largest connection count (with
    /// <paramref name="setup"/>, scripts/setup.sh run on each host lacking tools, then verified again), build
    /// here, ship to every host. Null, with each problem said on stderr, when any host fails.
    /// </summary>
    public static async Task<MultiHost?> PrepareAsync(string root, HostsFile hosts, IReadOnlyList<Implementation> impls, int maxConnections,
        CancellationToken cancel, bool setup = false)
    {
        var servers = impls.Where(i => i.HasServer).ToList();
        var clients = impls.Where(i => i.HasClient).ToList();
        Console.Error.WriteLine($"bench: checking {hosts.Hosts.Count} hosts of {hosts.Path}");
        IReadOnlyList<HostFacts> facts;
        try { facts = await HostCheck.VerifyAsync(hosts, new HostDemand(servers, clients, maxConnections), cancel,
                setup ? HostSetup.Of(root) : null); }
        catch (HostCheckException e)
        {
            foreach (var line in e.Message.Split('\n')) Console.Error.WriteLine($"bench: {line}");
            Console.Error.WriteLine("bench: nothing was built, shipped or run");
            return null;
        }
        if (!await BuildStage.EnsureBuiltAsync(root, impls, cancel)) return null;
        var ssh = new Ssh(hosts.SshConfig);
        var shipper = new Shipper(root, ssh);
        try
        {
            await Task.WhenAll(hosts.Hosts.Select(h => shipper.ShipAsync(h, h.Role == HostRoles.Server ? servers : clients, cancel)));
        }
        catch (HostCheckException e)
        {
            Console.Error.WriteLine($"bench: {e.Message}");
            Console.Error.WriteLine("bench: nothing was run");
            return null;
        }
        return new MultiHost(hosts, ssh, shipper, facts);
    }

    /// <summary>Closes every host's multiplexed connection.</summary>
    public Task CloseAsync() => Task.WhenAll(Hosts.Hosts.Select(Ssh.CloseAsync));
}
