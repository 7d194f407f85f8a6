using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Memif.Protocol;

namespace Memif.SharedMemory;

/// <summary>memif_desc_t: 16 bytes, packed, little-endian.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1, Size = 16)]
public struct Descriptor
{
    public ushort Flags;
    public ushort Region;
    public uint Length;
    public uint Offset;
    public uint Metadata;
}

public enum RingDirection
{
    /// <summary>Slave to master (DPDK: client to server, C2S).</summary>
    S2M,
    /// <summary>Master to slave (DPDK: server to client, S2C).</summary>
    M2S,
}

/// <summary>
/// A view of one ring in shared memory: cookie @0, flags @4, head @6, tail @64 (own cache line),
/// descriptors @128. Head and tail are free-running u16; slot = index &amp; mask.
/// The producer publishes with a release store, the consumer reads with an acquire load.
/// </summary>
public sealed unsafe class Ring
{
    private readonly byte* _header;

    public Ring(byte* header, int log2Size, RingDirection direction, int index, int interruptFd)
    {
        _header = header;
        Log2Size = log2Size;
        Size = 1 << log2Size;
        Mask = (ushort)(Size - 1);
        Direction = direction;
        Index = index;
        InterruptFd = interruptFd;
    }

    public int Log2Size { get; }
    public int Size { get; }
    public ushort Mask { get; }
    public RingDirection Direction { get; }
    public int Index { get; }
    /// <summary>The ring's eventfd: the producer writes 1 to it unless the consumer masked interrupts.</summary>
    public int InterruptFd { get; }

    public static ulong BytesFor(int log2Size) => MemifConstants.RingHeaderSize + ((ulong)MemifConstants.DescriptorSize << log2Size);

    public uint Cookie
    {
        get => Volatile.Read(ref *(uint*)_header);
        set => Volatile.Write(ref *(uint*)_header, value);
    }

    public ushort Flags
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref *(ushort*)(_header + 4));
        set => Volatile.Write(ref *(ushort*)(_header + 4), value);
    }

    public ushort Head
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref *(ushort*)(_header + 6));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        set => Volatile.Write(ref *(ushort*)(_header + 6), value);
    }

    public ushort Tail
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref *(ushort*)(_header + 64));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        set => Volatile.Write(ref *(ushort*)(_header + 64), value);
    }

    /// <summary>True when the consumer asked not to be kicked (it polls).</summary>
    public bool InterruptsMasked
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (Flags & MemifConstants.RingFlagMaskInt) != 0;
    }

    /// <summary>For reasons: "S2M ring 0".</summary>
    public string Name => $"{Direction} ring {Index}";

    /// <summary>
    /// A peer's index may only move forward, from <paramref name="previous"/> (what we last saw) up
    /// to <paramref name="limit"/> (as far as we let it go). Anything else would have us walk
    /// stale slots, or slots the peer does not own.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IndexAllowed(ushort index, ushort previous, ushort limit) =>
        (ushort)(index - previous) <= (ushort)(limit - previous);

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal string IndexProblem(string field, ushort index, ushort previous, ushort limit) =>
        (ushort)(previous - index) <= Size
            ? $"{Name} {field} moved backwards from {previous} to {index}"
            : $"{Name} {field} jumped ahead to {index} (at most {limit})";

    /// <summary>True when a descriptor the peer wrote lies inside a mapped region (and fits a span).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool Fits(Region[] regions, ushort region, uint offset, uint length) =>
        region < regions.Length && length <= int.MaxValue && regions[region].Contains(offset, length);

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal string DescriptorProblem(int index, Region[] regions, ushort region, uint offset, uint length) =>
        region >= regions.Length ? $"{Name} slot {index & Mask}: region {region} does not exist ({regions.Length} mapped)"
        : $"{Name} slot {index & Mask}: offset {offset} + length {length} outside region {region} ({regions[region].Size} bytes)";

    [MethodImpl(MethodImplOptions.NoInlining)]
    internal string PostedBufferProblem(int index, ushort region, uint offset, uint length, int bufferSize) =>
        $"{Name} slot {index & Mask}: region {region} offset {offset} length {length} outside its posted {bufferSize}-byte buffer";

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Descriptor* Desc(int index) => (Descriptor*)(_header + MemifConstants.RingHeaderSize) + (index & Mask);

    /// <summary>Slave side, before ADD_RING: cookie, flags, head = tail = 0, descriptors zeroed.</summary>
    public void Initialise(bool maskInterrupts)
    {
        new Span<byte>(_header, (int)BytesFor(Log2Size)).Clear();
        Flags = maskInterrupts ? MemifConstants.RingFlagMaskInt : (ushort)0;
        Cookie = MemifConstants.RingCookie;
    }
}
