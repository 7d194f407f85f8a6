using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Bench.Harness.Remote;

/// <summary>The role of a host in a multi-host run: one server host, one or more client hosts.</summary>
public static class HostRoles
{
    public const string Server = "server";
    public const string Client = "client";
}

/// <summary>
/// One host of a hosts file (docs/hosts.md): how ssh reaches it (a destination as `ssh` takes it,
/// an alias of the ssh config included), the address its peers reach it at, the cores its
/// programs are pinned to, its role, and the folder what the harness ships lands in.
/// </summary>
public sealed record RemoteHost(string Name, string Ssh, string Address, string Cpus, string Role, string Dir)
{
    public override string ToString() => Name;
}

/// <summary>
/// A hosts file: the hosts of a multi-host run, the ssh config to reach them with (none: ssh's
/// own, ~/.ssh/config), and a few words on the link between them for the summary.
/// </summary>
public sealed record HostsFile(string Path, string? SshConfig, string Link, IReadOnlyList<RemoteHost> Hosts)
{
    /// <summary>Where shipped files go when a host names no folder: relative to the remote user's home.</summary>
    public const string DefaultDir = ".cache/bench-remote";

    public RemoteHost Server => Hosts.Single(h => h.Role == HostRoles.Server);

    public IReadOnlyList<RemoteHost> Clients => Hosts.Where(h => h.Role == HostRoles.Client).ToList();

    private sealed record FileShape(
        [property: JsonPropertyName("ssh_config")] string? SshConfig,
        [property: JsonPropertyName("link")] string? Link,
        [property: JsonPropertyName("hosts")] List<HostShape>? Hosts);

    private sealed record HostShape(
        [property: JsonPropertyName("name")] string? Name,
        [property: JsonPropertyName("ssh")] string? Ssh,
        [property: JsonPropertyName("address")] string? Address,
        [property: JsonPropertyName("cpus")] string? Cpus,
        [property: JsonPropertyName("role")] string? Role,
        [property: JsonPropertyName("dir")] string? Dir);

    /// <summary>Reads and checks a hosts file; anything wrong is a <see cref="HostsFileException"/> naming the file, the host and the field.</summary>
    public static HostsFile Load(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) throw new HostsFileException($"{path}: no such hosts file");
        FileShape shape;
        try
        {
            shape = JsonSerializer.Deserialize<FileShape>(File.ReadAllText(path),
                new JsonSerializerOptions { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true })
                ?? throw new HostsFileException($"{path}: empty");
        }
        catch (JsonException e) { throw new HostsFileException($"{path}: not a hosts file: {e.Message}"); }

        var hosts = new List<RemoteHost>();
        foreach (var (h, i) in (shape.Hosts ?? []).Select((h, i) => (h, i)))
        {
            var name = h.Name ?? h.Ssh ?? $"#{i + 1}";
            string Need(string? value, string field) =>
                string.IsNullOrWhiteSpace(value) ? throw new HostsFileException($"{path}: host {name}: '{field}' is missing") : value;
            var address = Need(h.Address, "address");
            if (!IPAddress.TryParse(address, out _))
                throw new HostsFileException($"{path}: host {name}: address '{address}' is not an IP address (the one its peers connect to)");
            var role = Need(h.Role, "role");
            if (role is not (HostRoles.Server or HostRoles.Client))
                throw new HostsFileException($"{path}: host {name}: role '{role}' is not '{HostRoles.Server}' or '{HostRoles.Client}'");
            var cpus = Need(h.Cpus, "cpus");
            if (!System.Text.RegularExpressions.Regex.IsMatch(cpus, @"^\d+(-\d+)?(,\d+(-\d+)?)*$"))
                throw new HostsFileException($"{path}: host {name}: cpus '{cpus}' is not a CPU list such as 0, 0-3 or 0,2");
            hosts.Add(new RemoteHost(name, Need(h.Ssh, "ssh"), address, cpus, role, h.Dir ?? DefaultDir));
        }
        if (hosts.Count(h => h.Role == HostRoles.Server) != 1)
            throw new HostsFileException($"{path}: needs exactly one host with role '{HostRoles.Server}' (it has {hosts.Count(h => h.Role == HostRoles.Server)})");
        if (!hosts.Any(h => h.Role == HostRoles.Client))
            throw new HostsFileException($"{path}: needs at least one host with role '{HostRoles.Client}'");
        if (hosts.GroupBy(h => h.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new HostsFileException($"{path}: host name '{twice.Key}' appears twice");
        var config = shape.SshConfig is null ? null : System.IO.Path.GetFullPath(shape.SshConfig, System.IO.Path.GetDirectoryName(path)!);
        if (config is not null && !File.Exists(config)) throw new HostsFileException($"{path}: ssh_config {config}: no such file");
        return new HostsFile(path, config, shape.Link ?? "network", hosts);
    }
}

public sealed class HostsFileException(string message) : Exception(message);
