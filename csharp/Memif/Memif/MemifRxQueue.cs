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
/// The consumer side of one ring. The peer's index is checked before it is believed (forward
/// only, at most one ring past what we released), and every descriptor is read once into locals
/// and bounds-checked before its bytes are touched (as master: region, offset, length against
/// the mapped regions; as slave: inside the buffer it posted in that slot). A value no honest
/// peer writes fails the link (a DISCONNECT with the reason); an empty descriptor is skipped and
/// counted. Once the link is down every call returns nothing.
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
    private readonly LinkState _link;

    private ushort _cursor;   // next slot to read
    private ushort _released; // slots before this were given back
    private ushort _available; // cached peer index
    private ulong _sequence;
    private readonly nint[] _chainPtr;
    private readonly int[] _chainLen;

    internal MemifRxQueue(Ring ring, bool slave, Region[] regions, int bufferSize, ushort slotRegion, uint slotOffset, LinkState link)
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
        // Indices start at 0 on every connect (the slave initialises its rings, the master resets
        // them before CONNECTED): nothing is taken from the peer's memory unchecked.
        _cursor = _released = _available = 0;
        _chainPtr = new nint[_ringSize];
        _chainLen = new int[_ringSize];
    }

    public int Index => _ring.Index;
    public int RingSize => _ringSize;
    internal Ring Ring => _ring;
    public int InterruptFd => _ring.InterruptFd;

    /// <summary>Frames skipped: an empty descriptor, or a chain that could never complete.</summary>
    public long BadDescriptors { get; private set; }

    /// <summary>Slave side: posts every slot as an empty buffer (done once the link is up).</summary>
    internal void PostAll()
    {
        ushort head = (ushort)(_released + _ringSize);
        for (ushort i = _released; i != head; i++) PostSlot(i);
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
        ushort index = _slave ? _ring.Tail : _ring.Head;
        // Master: the slave may fill at most a ring past what we released. Slave: we posted exactly that far.
        ushort limit = (ushort)(_released + _ringSize);
        if (!Ring.IndexAllowed(index, _available, limit))
        {
            _link.Fail(_ring.IndexProblem(_slave ? "tail" : "head", index, _available, limit));
            return false;
        }
        _available = index;
        return _cursor != index;
    }

    /// <summary>True when at least one slot is waiting; reads the peer's index only when the cached one is used up.</summary>
    public bool HasPending
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _link.IsUp && (_cursor != _available || Refresh());
    }

    /// <summary>Frames waiting right now (refreshes the peer's index).</summary>
    public int Available
    {
        get
        {
            if (!_link.IsUp) return 0;
            Refresh();
            return (ushort)(_available - _cursor);
        }
    }

    /// <summary>
    /// Reads and checks one descriptor. False for an empty one (skip it) and for one pointing where
    /// it must not (the link has failed by then: callers stop when <see cref="LinkState.IsUp"/> is false).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Resolve(int index, out byte* data, out int length, out bool more)
    {
        int slot = index & (_ringSize - 1);
        Descriptor* d = _ring.Desc(slot);
        ushort flags = d->Flags;
        ushort region = d->Region;
        uint offset = d->Offset;
        uint len = d->Length;
        more = (flags & MemifConstants.DescFlagNext) != 0;
        length = (int)len;
        if (_slave)
        {
            // The master writes into the buffer we posted in this slot, and nowhere else.
            uint posted = _slotOffset + (uint)(slot * _bufferSize);
            uint skip = offset - posted; // wraps to huge when offset < posted
            if (region == _slotRegion && skip <= (uint)_bufferSize && len <= (uint)_bufferSize - skip)
            {
                data = _slotBase + (nint)slot * _bufferSize + skip;
                return len != 0;
            }
            _link.Fail(_ring.PostedBufferProblem(index, region, offset, len, _bufferSize));
        }
        else if (Ring.Fits(_regions, region, offset, len))
        {
            data = _regions[region].Base + offset;
            return len != 0;
        }
        else
        {
            _link.Fail(_ring.DescriptorProblem(index, _regions, region, offset, len));
        }
        data = null;
        length = 0;
        return false;
    }

    /// <summary>Dequeues the next complete frame, or returns false when none is waiting.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryReceive(out MemifPacket packet)
    {
        while (true)
        {
            if (!_link.IsUp || (_cursor == _available && !Refresh()))
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
                continue; // the check at the top ends it if the link failed
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
            if (!_link.IsUp) return -1;
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
        if (n == 0 || !_link.IsUp) return 0;
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
