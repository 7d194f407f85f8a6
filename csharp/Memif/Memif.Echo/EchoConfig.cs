using System.Text.Json;
using System.Text.Json.Serialization;
using Bench.CommandLine;

namespace Memif.Echo;

/// <summary>
/// The JSON config of one side (c.json for the load client, s.json for the echo server), in the
/// spirit of the perf_tool memif test. Command-line arguments override it.
/// </summary>
public sealed record EchoConfig
{
    public string? Role { get; init; }
    public string? Socket { get; init; }
    public uint InterfaceId { get; init; }
    public string? Secret { get; init; }
    public int Queues { get; init; } = 1;
    public int RingSize { get; init; } = 1024;
    public int BufferSize { get; init; } = 2048;
    public string? Mode { get; init; }
    /// <summary>CPU to pin the data-path thread to; null leaves pinning to taskset.</summary>
    public int? Core { get; init; }
    /// <summary>Client only: frames in flight across all queues (--in-flight overrides).</summary>
    public int? Window { get; init; }

    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public static EchoConfig Load(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<EchoConfig>(File.ReadAllText(path), Json)
                ?? throw new UsageException($"{path}: empty config");
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{path}: {e.Message}");
        }
    }

    public MemifOptions ToOptions(MemifRole defaultRole, MemifMode defaultMode, string appName)
    {
        if (Socket is null) throw new UsageException("no memif socket: pass --memif-socket PATH (or \"socket\" in the config)");
        if (RingSize < 2 || RingSize > 1 << 14 || (RingSize & (RingSize - 1)) != 0)
            throw new UsageException($"ring size must be a power of two from 2 to 16384, got {RingSize}");
        var options = new MemifOptions
        {
            SocketPath = Socket,
            Role = ParseRole(Role) ?? defaultRole,
            Mode = ParseMode(Mode) ?? defaultMode,
            InterfaceId = InterfaceId,
            Secret = string.IsNullOrEmpty(Secret) ? null : Secret,
            Queues = Queues,
            Log2RingSize = System.Numerics.BitOperations.Log2((uint)RingSize),
            BufferSize = BufferSize,
            AppName = appName,
        };
        // The library's own check of what a user can set (buffer size, queues, secret, socket path):
        // its ArgumentException names the bad value, and here that value came from the user.
        try { options.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        return options;
    }

    public static MemifRole? ParseRole(string? role) => role?.ToLowerInvariant() switch
    {
        null => null,
        "master" or "server" => MemifRole.Master,
        "slave" or "client" => MemifRole.Slave,
        _ => throw new UsageException($"role must be master or slave, got '{role}'"),
    };

    public static MemifMode? ParseMode(string? mode) => mode?.ToLowerInvariant() switch
    {
        null => null,
        "polling" or "poll" => MemifMode.Polling,
        "interrupt" => MemifMode.Interrupt,
        _ => throw new UsageException($"mode must be polling or interrupt, got '{mode}'"),
    };
}
