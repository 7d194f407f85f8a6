using System.Buffers.Binary;
using Memif;
using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Fuzz.Targets;

/// <summary>
/// One RX or TX queue, as master or as slave, reading ring indices and descriptors that a hostile
/// peer wrote into shared memory. Input: a shape byte, then rounds. Shape bit 0: master (else
/// slave); bit 1: TX (else RX); bits 2-3: log2 of the ring size, less one (2 to 16 slots).
/// Each round is what the peer writes before the queue looks again: head, tail and flags (u16
/// each), then every descriptor (16 bytes); a short last round writes what it has. The queue
/// never throws on bad memory: it takes the link down (the rounds stop there), so the checks here
/// are its promises: every frame and buffer lies inside memory it may touch, and no index claims
/// more than a ring.
/// </summary>
sealed unsafe class MemifRings() : FuzzTarget("memif-rings", "MemifRxQueue and MemifTxQueue over peer-written rings and descriptors")
{
    private const int BufferSize = 256, MaxSlots = 16;
    // Region 0: the ring at 0 and the slave's buffers at BuffersAt; region 1: a second one a master may be pointed at.
    private const int BuffersAt = 4096;

    private sealed class Memory
    {
        public readonly Region[] Regions = [Region.Create("fuzz-ring", BuffersAt + MaxSlots * BufferSize), Region.Create("fuzz-buffers", 4096)];
        public readonly int EventFd = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
    }

    private readonly Lazy<Memory> _memory = new(() => new Memory());

    protected override void Feed(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return;
        var memory = _memory.Value;
        foreach (var region in memory.Regions) new Span<byte>(region.Base, (int)region.Size).Clear();

        var shape = input[0];
        bool master = (shape & 1) != 0, sending = (shape & 2) != 0;
        var log2 = 1 + ((shape >> 2) & 3);
        var slots = 1 << log2;
        var ringBytes = 6 + slots * MemifConstants.DescriptorSize;
        var ring = new Ring(memory.Regions[0].Base, log2, sending ^ master ? RingDirection.S2M : RingDirection.M2S, 0, memory.EventFd);
        ring.Initialise(maskInterrupts: true);

        // Goes down, with a reason, when the queue finds an index or a descriptor no peer may write.
        var link = new LinkState();
        MemifRxQueue? rx = null;
        MemifTxQueue? tx = null;
        for (var round = input[1..]; !round.IsEmpty && link.IsUp; round = round[Math.Min(ringBytes, round.Length)..])
        {
            WriteAsPeer(ring, round[..Math.Min(ringBytes, round.Length)]);
            // Built after the first round, so the peer's first indices are already in the ring when the queue starts (at 0, as a connected queue does).
            if (sending)
            {
                tx ??= new MemifTxQueue(ring, slave: !master, memory.Regions, BufferSize, 0, BuffersAt, link);
                Send(tx, memory, master);
            }
            else
            {
                if (rx is null)
                {
                    rx = new MemifRxQueue(ring, slave: !master, memory.Regions, BufferSize, 0, BuffersAt, link);
                    if (!master) rx.PostAll(); // as MemifSlave does once connected
                }
                Receive(rx, memory, master);
            }
        }
    }

    /// <summary>Head @6, tail @64 and flags @4 as the ring lays them out; then the descriptors from @128.</summary>
    private static void WriteAsPeer(Ring ring, ReadOnlySpan<byte> round)
    {
        if (round.Length >= 2) ring.Head = BinaryPrimitives.ReadUInt16LittleEndian(round);
        if (round.Length >= 4) ring.Tail = BinaryPrimitives.ReadUInt16LittleEndian(round[2..]);
        if (round.Length >= 6) ring.Flags = BinaryPrimitives.ReadUInt16LittleEndian(round[4..]);
        if (round.Length > 6) round[6..].CopyTo(new Span<byte>(ring.Desc(0), ring.Size * MemifConstants.DescriptorSize));
    }

    private static void Receive(MemifRxQueue rx, Memory memory, bool master)
    {
        if ((uint)rx.Available > (uint)rx.RingSize) throw new InvariantException($"{rx.Available} frames available on a ring of {rx.RingSize}");
        // Twice the ring: a queue that hands out more frames than the ring holds is looping on bad memory.
        for (var n = 0; n < 2 * rx.RingSize && rx.TryReceive(out var packet); n++)
        {
            long total = 0;
            for (var i = 0; i < packet.Segments; i++)
            {
                var segment = packet.Segment(i);
                Inside(memory, master, segment, "received frame segment");
                total += segment.Length;
            }
            if (total != packet.Length) throw new InvariantException($"segments add up to {total}, the frame says {packet.Length}");
            if (packet.CopyTo(new byte[packet.Length]) != packet.Length) throw new InvariantException("CopyTo lost bytes");
        }
        rx.Release();
    }

    private static void Send(MemifTxQueue tx, Memory memory, bool master)
    {
        if ((uint)tx.Free > (uint)tx.RingSize) throw new InvariantException($"{tx.Free} slots free on a ring of {tx.RingSize}");
        for (var n = 0; n < 2 * tx.RingSize && tx.TryGetBuffer(out var buffer); n++)
        {
            Inside(memory, master, buffer.Span, "buffer to fill");
            buffer.Span.Fill(0xA5);
            buffer.Commit(buffer.Span.Length);
        }
        tx.Flush();
    }

    /// <summary>A master may touch any region the slave gave it; a slave only its own buffers, never the ring.</summary>
    private static void Inside(Memory memory, bool master, Span<byte> span, string what)
    {
        fixed (byte* p = span)
        {
            var own = memory.Regions[0];
            var ok = !master && p >= own.Base + BuffersAt && p + span.Length <= own.Base + own.Size;
            foreach (var r in memory.Regions) ok |= master && p >= r.Base && p + span.Length <= r.Base + r.Size;
            if (!ok) throw new InvariantException($"{what} of {span.Length} bytes lies outside the memory the {(master ? "master" : "slave")} may touch");
        }
    }

    protected override bool IsRejection(Exception e) => false;

    public override IEnumerable<(string Name, byte[] Input)> Seeds
    {
        get
        {
            // Shapes for 2^3 slots; one round with head 3, tail 0 and three descriptors into region 0's buffers.
            foreach (var (name, shape) in new[] { ("slave-rx", 0b1000), ("master-rx", 0b1001), ("slave-tx", 0b1010), ("master-tx", 0b1011) })
            {
                var round = new byte[6 + 8 * MemifConstants.DescriptorSize];
                BinaryPrimitives.WriteUInt16LittleEndian(round, 3);
                for (var slot = 0; slot < 3; slot++)
                {
                    var d = round.AsSpan(6 + slot * MemifConstants.DescriptorSize);
                    BinaryPrimitives.WriteUInt16LittleEndian(d[0..], (ushort)(slot == 1 ? MemifConstants.DescFlagNext : 0));
                    BinaryPrimitives.WriteUInt32LittleEndian(d[4..], 64);                                   // length
                    BinaryPrimitives.WriteUInt32LittleEndian(d[8..], (uint)(BuffersAt + slot * BufferSize)); // offset
                }
                yield return (name, [(byte)shape, .. round, .. round]);
            }
        }
    }
}
