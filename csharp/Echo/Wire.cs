using System.Buffers.Binary;
using System.Diagnostics;

namespace Bench.Echo;

/// <summary>What the contract (docs/contract.md) fixes about bytes on the wire and lines on stdout.</summary>
public static class Wire
{
    /// <summary>Byte j of request k on connection c is (c + k + j) mod 251, so crossed or stale echoes differ.</summary>
    public static void FillPayload(Span<byte> payload, int connection, long request)
    {
        var start = (int)((connection + request) % 251);
        for (var j = 0; j < payload.Length; j++)
            payload[j] = (byte)((start + j) % 251);
    }

    public static long ElapsedNanoseconds(long startTimestamp, long endTimestamp) =>
        (long)((endTimestamp - startTimestamp) * (1e9 / Stopwatch.Frequency));

    /// <summary>Raw little-endian u64 nanoseconds, one per successful request, no header.</summary>
    public static void WriteSamples(string path, IEnumerable<long[]> sampleChunks, IEnumerable<int> counts)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Span<byte> eight = stackalloc byte[8];
        foreach (var (chunk, count) in sampleChunks.Zip(counts))
            for (var i = 0; i < count; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(eight, (ulong)chunk[i]);
                file.Write(eight);
            }
    }
}
