using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Memif;

/// <summary>
/// The frames the echo benchmark sends: an Ethernet header (local experimental EtherType
/// 0x88B5), then the sequence number and send timestamp each frame carries, then a pattern
/// that depends on both, so a stale or crossed echo is caught byte for byte.
/// </summary>
public static class EthernetFrame
{
    public const int HeaderSize = 14;
    public const int SequenceOffset = 14;
    public const int TimestampOffset = 22;
    /// <summary>Smallest frame that holds the header, sequence and timestamp.</summary>
    public const int MinBenchmarkFrame = 30;
    public const ushort BenchmarkEtherType = 0x88B5;

    /// <summary>Swaps destination and source MAC in place (what testpmd's macswap does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SwapMacs(Span<byte> frame)
    {
        if (frame.Length < 12) return;
        // 6-byte fields: read both as one u64 + u32 pair and write them back crossed.
        ref byte p = ref frame[0];
        uint dstLo = Unsafe.ReadUnaligned<uint>(ref p);
        ushort dstHi = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, 4));
        uint srcLo = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref p, 6));
        ushort srcHi = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref p, 10));
        Unsafe.WriteUnaligned(ref p, srcLo);
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref p, 4), srcHi);
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref p, 6), dstLo);
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref p, 10), dstHi);
    }

    /// <summary>Writes a benchmark frame of <c>frame.Length</c> bytes.</summary>
    public static void WriteBenchmark(Span<byte> frame, ReadOnlySpan<byte> dst, ReadOnlySpan<byte> src, ulong sequence, long timestamp)
    {
        dst.CopyTo(frame);
        src.CopyTo(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], BenchmarkEtherType);
        BinaryPrimitives.WriteUInt64LittleEndian(frame[SequenceOffset..], sequence);
        BinaryPrimitives.WriteInt64LittleEndian(frame[TimestampOffset..], timestamp);
        FillPattern(frame[MinBenchmarkFrame..], sequence);
    }

    public static ulong ReadSequence(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadUInt64LittleEndian(frame[SequenceOffset..]);
    public static long ReadTimestamp(ReadOnlySpan<byte> frame) => BinaryPrimitives.ReadInt64LittleEndian(frame[TimestampOffset..]);

    // The pattern repeats every 251 bytes, so every body is a slice of one precomputed run:
    // writing is a memcpy and checking a vectorised compare.
    private static readonly byte[] Pattern = CreatePattern();

    private static byte[] CreatePattern()
    {
        var p = new byte[251 + 65536];
        for (int i = 0; i < p.Length; i++) p[i] = (byte)(i % 251);
        return p;
    }

    private static ReadOnlySpan<byte> PatternFor(ulong sequence, int length) => Pattern.AsSpan((int)(sequence % 251), length);

    /// <summary>Byte j of the body of frame k is (k + j) mod 251: differs between frames, never all zero.</summary>
    public static void FillPattern(Span<byte> body, ulong sequence) => PatternFor(sequence, body.Length).CopyTo(body);

    /// <summary>True when the echo is exactly what was sent with the MACs swapped.</summary>
    public static bool VerifyEcho(ReadOnlySpan<byte> echo, int expectedLength, ReadOnlySpan<byte> ourMac, ReadOnlySpan<byte> peerMac, ulong sequence)
    {
        if (echo.Length != expectedLength) return false;
        if (!echo[..6].SequenceEqual(ourMac) || !echo.Slice(6, 6).SequenceEqual(peerMac)) return false;
        if (BinaryPrimitives.ReadUInt16BigEndian(echo[12..]) != BenchmarkEtherType) return false;
        if (ReadSequence(echo) != sequence) return false;
        var body = echo[MinBenchmarkFrame..];
        return body.SequenceEqual(PatternFor(sequence, body.Length));
    }
}
