using System.Runtime.CompilerServices;
using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Memif;

/// <summary>
/// A buffer dequeued from a TX queue: <see cref="Span"/> points straight into the shared memory
/// slot. Fill it, then <see cref="Commit"/> the bytes written; <see cref="MemifTxQueue.Flush"/>
/// hands every committed buffer to the peer at once.
/// </summary>
public unsafe ref struct MemifBuffer
{
    private readonly Descriptor* _desc;

    internal MemifBuffer(Span<byte> span, Descriptor* desc, ulong sequence)
    {
        Span = span;
        _desc = desc;
        Sequence = sequence;
    }

    /// <summary>The whole slot (its capacity), in shared memory.</summary>
    public Span<byte> Span { get; }

    /// <summary>Running number of buffers this queue has handed out (for ordering checks).</summary>
    public ulong Sequence { get; }

    /// <summary>Sets the frame length of this slot; <paramref name="more"/> chains the next slot to it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Commit(int length, bool more = false)
    {
        if ((uint)length > (uint)Span.Length) ThrowLength(length, Span.Length);
        _desc->Length = (uint)length;
        // Always written, never left over: stale NEXT bits corrupt the peer's frames (DPDK fixed this only in 26.03).
        _desc->Flags = more ? MemifConstants.DescFlagNext : (ushort)0;
    }

    private static void ThrowLength(int length, int capacity) =>
        throw new ArgumentOutOfRangeException(nameof(length), $"length {length} exceeds the buffer's {capacity} bytes");
}

/// <summary>
/// The producer side of one ring. As slave it fills its own S2M slots (buffer addresses come from
/// its own layout, never read back from shared memory); as master it fills the M2S slots the
/// slave posted, bounds-checking each posted descriptor before writing a byte. The peer's index
/// must move forward and stay within the ring, or the link fails, as it does for a descriptor
/// pointing outside the regions. Once the link is down every call does nothing.
/// </summary>
public sealed unsafe class MemifTxQueue
{
    private readonly Ring _ring;
    private readonly bool _slave;
    private readonly Region[] _regions;
    private readonly int _ringSize;
    // Slave only: where slot 0's buffer starts and how far apart slots are.
    private readonly byte* _slotBase;
    private readonly ushort _slotRegion;
    private readonly uint _slotOffset;
    private readonly int _bufferSize;
    private readonly LinkState _link;

    private ushort _cursor;    // next slot to hand out
    private ushort _published; // what the peer has seen
    private ushort _limit;     // cached: slots before this are free
    private ushort _peerIndex; // the peer's index as last read (slave: the master's tail; master: the slave's head)
    private ulong _sequence;

    internal MemifTxQueue(Ring ring, bool slave, Region[] regions, int bufferSize, ushort slotRegion, uint slotOffset, LinkState link)
    {
        _link = link;
        _ring = ring;
        _slave = slave;
        _regions = regions;
        _ringSize = ring.Size;
        _bufferSize = bufferSize;
        _slotRegion = slotRegion;
        _slotOffset = slotOffset;
        if (slave) _slotBase = regions[slotRegion].Base + slotOffset;
        // Indices start at 0 on every connect (see MemifRxQueue); nothing is free until the first refresh.
        _cursor = _published = _limit = _peerIndex = 0;
    }

    public int Index => _ring.Index;
    public int RingSize => _ringSize;
    internal Ring Ring => _ring;

    /// <summary>Empty buffers the peer posted (skipped, sent back empty).</summary>
    public long BadDescriptors { get; private set; }

    /// <summary>Buffers handed out and committed but not yet flushed.</summary>
    public int Pending => (ushort)(_cursor - _published);

    /// <summary>Slots free right now (refreshes the peer's index).</summary>
    public int Free
    {
        get
        {
            if (!_link.IsUp) return 0;
            Refresh();
            return (ushort)(_limit - _cursor);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Refresh()
    {
        // Slave: the master's tail frees slots, and cannot pass our head. Master: the slave's head
        // posts them, at most a ring past our tail.
        ushort index = _slave ? _ring.Tail : _ring.Head;
        ushort allowed = _slave ? _published : (ushort)(_published + _ringSize);
        if (!Ring.IndexAllowed(index, _peerIndex, allowed))
        {
            _link.Fail(_ring.IndexProblem(_slave ? "tail" : "head", index, _peerIndex, allowed));
            return;
        }
        _peerIndex = index;
        _limit = _slave ? (ushort)(index + _ringSize) : index;
    }

    /// <summary>Dequeues the next free buffer, or returns false when the ring is full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGetBuffer(out MemifBuffer buffer)
    {
        while (true)
        {
            if (!_link.IsUp)
            {
                buffer = default;
                return false;
            }
            if (_cursor == _limit)
            {
                Refresh();
                if (_cursor == _limit || !_link.IsUp)
                {
                    buffer = default;
                    return false;
                }
            }
            int slot = _cursor & (_ringSize - 1);
            Descriptor* d = _ring.Desc(slot);
            if (_slave)
            {
                uint offset = _slotOffset + (uint)(slot * _bufferSize);
                d->Region = _slotRegion;
                d->Offset = offset;
                _cursor++;
                buffer = new MemifBuffer(new Span<byte>(_slotBase + (nint)slot * _bufferSize, _bufferSize), d, _sequence++);
                return true;
            }

            // Read the peer's descriptor once into locals, check, then use only the locals.
            ushort region = d->Region;
            uint off = d->Offset;
            uint capacity = d->Length;
            if (!Ring.Fits(_regions, region, off, capacity))
            {
                _link.Fail(_ring.DescriptorProblem(_cursor, _regions, region, off, capacity));
                buffer = default;
                return false;
            }
            _cursor++;
            if (capacity != 0)
            {
                buffer = new MemifBuffer(new Span<byte>(_regions[region].Base + off, (int)capacity), d, _sequence++);
                return true;
            }
            BadDescriptors++;
            d->Length = 0;
            d->Flags = 0;
        }
    }

    /// <summary>Dequeues a buffer, spinning (or sleeping after a while) until one frees up or the timeout passes.</summary>
    public bool TryGetBuffer(out MemifBuffer buffer, TimeSpan timeout)
    {
        if (TryGetBuffer(out buffer)) return true;
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var spinner = new SpinWait();
        while (Environment.TickCount64 < deadline)
        {
            if (TryGetBuffer(out buffer)) return true;
            spinner.SpinOnce(sleep1Threshold: -1);
        }
        return false;
    }

    /// <summary>Copies a whole frame in, chaining slots when it is larger than one buffer. False (nothing queued) when it does not fit.</summary>
    public bool TrySend(ReadOnlySpan<byte> frame)
    {
        ushort savedCursor = _cursor;
        ulong savedSequence = _sequence;
        int done = 0;
        do
        {
            if (!TryGetBuffer(out var buffer))
            {
                _cursor = savedCursor; // nothing published yet: giving the slots back is just rewinding
                _sequence = savedSequence;
                return false;
            }
            int n = Math.Min(buffer.Span.Length, frame.Length - done);
            frame.Slice(done, n).CopyTo(buffer.Span);
            done += n;
            buffer.Commit(n, more: done < frame.Length);
        } while (done < frame.Length);
        return true;
    }

    /// <summary>Publishes everything committed since the last flush and kicks the peer if it wants interrupts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Flush()
    {
        int n = (ushort)(_cursor - _published);
        if (n == 0 || !_link.IsUp) return 0;
        // Release store: descriptors and data become visible before the index.
        if (_slave) _ring.Head = _cursor;
        else _ring.Tail = _cursor;
        _published = _cursor;
        if (!_ring.InterruptsMasked) Libc.Kick(_ring.InterruptFd);
        return n;
    }
}
