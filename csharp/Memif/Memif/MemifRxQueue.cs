using System.Runtime.CompilerServices;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Memif;

/// <summary>
/// A received frame. For a one-slot frame <see cref="Span"/> points straight into shared memory;
/// a chained frame exposes its slots through <see cref="Segment"/> or <see cref="CopyTo"/>.
/// Valid until the next <see cref="MemifRxQueue.TryReceive(out MemifPacket)"/> or release.
/// </summary>
public unsafe ref struct MemifPacket
{
    private readonly MemifRxQueue _queue;

    internal MemifPacket(MemifRxQueue queue, Span<byte> first, int segments, int length, ulong sequence)
    {
        _queue = queue;
        Span = first;
        Segments = segments;
        Length = length;
        Sequence = sequence;
    }

    /// <summary>The first (for most frames the only) slot's bytes.</summary>
    public Span<byte> Span { get; }
    public int Segments { get; }
    /// <summary>Total frame length over all segments.</summary>
    public int Length { get; }
    /// <summary>Running number of frames this queue has received.</summary>
    public ulong Sequence { get; }

    public readonly Span<byte> Segment(int i) => i == 0 ? Span : _queue.ChainSegment(i);

    /// <summary>Gathers the frame into <paramref name="destination"/> and returns its length.</summary>
    public readonly int CopyTo(Span<byte> destination)
    {
        int done = 0;
        for (int i = 0; i < Segments; i++)
        {
            var s = Segment(i);
            s.CopyTo(destination[done..]);
            done += s.Length;
        }
        return done;
    }
}

/// <summary>
/// The consumer side of one ring. Every descriptor is read once into locals and bounds-checked
/// before its bytes are touched (as master: region, offset, length against the mapped regions;
/// as slave: length against its own buffer size, the address coming from its own layout).
/// Bad descriptors are skipped and counted, never trusted.
/// </summary>
public sealed unsafe class MemifRxQueue
{
    private readonly Ring _ring;
    private readonly bool _slave;
    private readonly Region[] _regions;
    private readonly int _ringSize;
    private readonly byte* _slotBase;
    private readonly ushort _slotRegion;
    private readonly uint _slotOffset;
    private readonly int _bufferSize;

    private ushort _cursor;   // next slot to read
    private ushort _released; // slots before this were given back
    private ushort _available; // cached peer index
    private ulong _sequence;
    private readonly nint[] _chainPtr;
    private readonly int[] _chainLen;

    internal MemifRxQueue(Ring ring, bool slave, Region[] regions, int bufferSize, ushort slotRegion, uint slotOffset)
    {
        _ring = ring;
        _slave = slave;
        _regions = regions;
        _ringSize = ring.Size;
        _bufferSize = bufferSize;
        _slotRegion = slotRegion;
        _slotOffset = slotOffset;
        if (slave) _slotBase = regions[slotRegion].Base + slotOffset;
        _cursor = _released = _available = ring.Tail;
        _chainPtr = new nint[_ringSize];
        _chainLen = new int[_ringSize];
    }

    public int Index => _ring.Index;
    public int RingSize => _ringSize;
    internal Ring Ring => _ring;
    public int InterruptFd => _ring.InterruptFd;

    /// <summary>Descriptors that pointed outside the regions, had length 0 or overran a buffer.</summary>
    public long BadDescriptors { get; private set; }

    /// <summary>Slave side: posts every slot as an empty buffer (done once the link is up).</summary>
    internal void PostAll()
    {
        ushort head = (ushort)(_released + _ringSize);
        for (ushort i = _ring.Head; i != head; i++) PostSlot(i);
        _ring.Head = head;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PostSlot(int index)
    {
        int slot = index & (_ringSize - 1);
        Descriptor* d = _ring.Desc(slot);
        d->Region = _slotRegion;
        d->Offset = _slotOffset + (uint)(slot * _bufferSize);
        d->Length = (uint)_bufferSize;
        d->Flags = 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Refresh()
    {
        ushort available = _slave ? _ring.Tail : _ring.Head;
        // Never believe more than a ring's worth, whatever index the peer wrote.
        if ((ushort)(available - _released) > _ringSize) available = (ushort)(_released + _ringSize);
        _available = available;
        return _cursor != available;
    }

    /// <summary>True when at least one slot is waiting; reads the peer's index only when the cached one is used up.</summary>
    public bool HasPending
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _cursor != _available || Refresh();
    }

    /// <summary>Frames waiting right now (refreshes the peer's index).</summary>
    public int Available
    {
        get
        {
            Refresh();
            return (ushort)(_available - _cursor);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Resolve(int index, out byte* data, out int length, out bool more)
    {
        int slot = index & (_ringSize - 1);
        Descriptor* d = _ring.Desc(slot);
        ushort flags = d->Flags;
        uint len = d->Length;
        more = (flags & MemifConstants.DescFlagNext) != 0;
        length = (int)len;
        if (_slave)
        {
            // The master only writes length and flags into our buffers; the address is ours.
            data = _slotBase + (nint)slot * _bufferSize;
            return len != 0 && len <= (uint)_bufferSize;
        }
        ushort region = d->Region;
        uint offset = d->Offset;
        if (region < _regions.Length && len != 0 && len <= int.MaxValue && _regions[region].Contains(offset, len))
        {
            data = _regions[region].Base + offset;
            return true;
        }
        data = null;
        return false;
    }

    /// <summary>Dequeues the next complete frame, or returns false when none is waiting.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReceive(out MemifPacket packet)
    {
        while (true)
        {
            if (_cursor == _available && !Refresh())
            {
                packet = default;
                return false;
            }
            bool ok = Resolve(_cursor, out byte* data, out int length, out bool more);
            if (!more)
            {
                _cursor++;
                if (ok)
                {
                    packet = new MemifPacket(this, new Span<byte>(data, length), 1, length, _sequence++);
                    return true;
                }
                BadDescriptors++;
                continue;
            }
            int result = ReceiveChain(data, length, ok, out packet);
            if (result > 0) return true;
            if (result < 0) return false;
        }
    }

    /// <summary>Waits for a frame by spinning until <paramref name="timeout"/> (interrupt users call <see cref="MemifConnection.Wait"/> instead).</summary>
    public bool TryReceive(out MemifPacket packet, TimeSpan timeout)
    {
        if (TryReceive(out packet)) return true;
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        var spinner = new SpinWait();
        while (Environment.TickCount64 < deadline)
        {
            if (TryReceive(out packet)) return true;
            spinner.SpinOnce(sleep1Threshold: -1);
        }
        return false;
    }

    /// <summary>1 = frame ready, 0 = bad chain skipped (try again), -1 = chain still incomplete (wait).</summary>
    private int ReceiveChain(byte* firstData, int firstLength, bool firstOk, out MemifPacket packet)
    {
        packet = default;
        _chainPtr[0] = (nint)firstData;
        _chainLen[0] = firstLength;
        bool ok = firstOk;
        long total = firstLength;
        int count = 1;
        ushort index = (ushort)(_cursor + 1);
        bool more = true;
        while (more)
        {
            if (index == _available && !RefreshFor(index))
            {
                // A chain as long as the ring can never complete: drop it rather than stall forever.
                if ((ushort)(index - _cursor) >= _ringSize)
                {
                    BadDescriptors++;
                    _cursor = index;
                    return 0;
                }
                return -1;
            }
            ok &= Resolve(index, out byte* data, out int length, out more);
            if (count < _ringSize)
            {
                _chainPtr[count] = (nint)data;
                _chainLen[count] = length;
            }
            total += length;
            count++;
            index++;
        }
        _cursor = index;
        if (!ok || total > int.MaxValue)
        {
            BadDescriptors++;
            return 0;
        }
        packet = new MemifPacket(this, new Span<byte>(firstData, firstLength), count, (int)total, _sequence++);
        return 1;
    }

    private bool RefreshFor(ushort index)
    {
        Refresh();
        return index != _available;
    }

    internal Span<byte> ChainSegment(int i) => new((void*)_chainPtr[i], _chainLen[i]);

    /// <summary>Gives every frame received so far back to the peer (master: tail; slave: re-post the buffers).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Release()
    {
        int n = (ushort)(_cursor - _released);
        if (n == 0) return 0;
        if (_slave)
        {
            ushort head = (ushort)(_cursor + _ringSize);
            for (ushort i = (ushort)(_released + _ringSize); i != head; i++) PostSlot(i);
            _ring.Head = head;
        }
        else
        {
            _ring.Tail = _cursor;
        }
        _released = _cursor;
        return n;
    }
}
