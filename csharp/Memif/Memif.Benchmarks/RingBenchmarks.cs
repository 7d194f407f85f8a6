using BenchmarkDotNet.Attributes;
using Memif.SharedMemory;

namespace Memif.Benchmarks;

/// <summary>
/// The data path without the peer process: both ends of one ring pair in this process over a
/// real memfd region laid out as the slave lays it out (DPDK's single-region layout). Each
/// operation is one 64-byte frame through a burst of 32: produce, publish, consume, release.
/// The two directions differ in who trusts what: the master bounds-checks every descriptor
/// the slave wrote, the slave computes addresses from its own layout.
/// </summary>
[MemoryDiagnoser]
public unsafe class RingBenchmarks
{
    private const int Burst = 32;
    private const int Log2 = 10;
    private Region _region = null!;
    private MemifTxQueue _slaveTx = null!, _masterTx = null!, _chainTx = null!;
    private MemifRxQueue _masterRx = null!, _slaveRx = null!, _chainRx = null!;
    private readonly byte[] _frame = new byte[64];
    private readonly byte[] _jumbo = new byte[5000];
    private readonly byte[] _scratch = new byte[9216];

    [GlobalSetup]
    public void Setup()
    {
        const int bufferSize = 2048;
        ulong ringBytes = Ring.BytesFor(Log2);
        ulong perRing = (1UL << Log2) * bufferSize;
        _region = Region.Create("bench", 3 * ringBytes + 3 * perRing);
        var regions = new[] { _region };
        var link = new LinkState(); // up for good: no peer, no control channel
        Ring MakeRing(int k, RingDirection dir)
        {
            var ring = new Ring(_region.Base + (ulong)k * ringBytes, Log2, dir, 0, -1);
            ring.Initialise(maskInterrupts: true); // polling: no eventfd kicks in the measurement
            return ring;
        }
        uint Buffers(int k) => (uint)(3 * ringBytes + (ulong)k * perRing);

        var s2m = MakeRing(0, RingDirection.S2M);
        _slaveTx = new MemifTxQueue(s2m, slave: true, regions, bufferSize, 0, Buffers(0), link);
        _masterRx = new MemifRxQueue(s2m, slave: false, regions, bufferSize, 0, 0, link);

        var m2s = MakeRing(1, RingDirection.M2S);
        _slaveRx = new MemifRxQueue(m2s, slave: true, regions, bufferSize, 0, Buffers(1), link);
        _masterTx = new MemifTxQueue(m2s, slave: false, regions, bufferSize, 0, 0, link);
        _slaveRx.PostAll();

        var chain = MakeRing(2, RingDirection.S2M);
        _chainTx = new MemifTxQueue(chain, slave: true, regions, bufferSize, 0, Buffers(2), link);
        _chainRx = new MemifRxQueue(chain, slave: false, regions, bufferSize, 0, 0, link);

        EthernetFrame.WriteBenchmark(_frame, [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], 1, 0);
    }

    [GlobalCleanup]
    public void Cleanup() => _region.Dispose();

    /// <summary>Slave TX (own addresses) into master RX (every descriptor bounds-checked).</summary>
    [Benchmark(OperationsPerInvoke = Burst)]
    public int SlaveToMaster()
    {
        for (int i = 0; i < Burst; i++)
        {
            _slaveTx.TryGetBuffer(out var b);
            _frame.CopyTo(b.Span);
            b.Commit(_frame.Length);
        }
        _slaveTx.Flush();
        int bytes = 0;
        while (_masterRx.TryReceive(out var p)) bytes += p.Span[20];
        _masterRx.Release();
        return bytes;
    }

    /// <summary>Master TX into slave-posted buffers (checked), slave RX and re-post.</summary>
    [Benchmark(OperationsPerInvoke = Burst)]
    public int MasterToSlave()
    {
        for (int i = 0; i < Burst; i++)
        {
            _masterTx.TryGetBuffer(out var b);
            _frame.CopyTo(b.Span);
            b.Commit(_frame.Length);
        }
        _masterTx.Flush();
        int bytes = 0;
        while (_slaveRx.TryReceive(out var p)) bytes += p.Span[20];
        _slaveRx.Release();
        return bytes;
    }

    /// <summary>What the echo server does per frame: receive, copy into a TX slot, swap MACs.</summary>
    [Benchmark(OperationsPerInvoke = Burst)]
    public int EchoWithMacSwap()
    {
        for (int i = 0; i < Burst; i++) _slaveTx.TrySend(_frame);
        _slaveTx.Flush();
        int n = 0;
        while (_masterRx.TryReceive(out var p))
        {
            _masterTx.TryGetBuffer(out var b);
            var frame = b.Span[..p.Length];
            p.Span.CopyTo(frame);
            EthernetFrame.SwapMacs(frame);
            b.Commit(p.Length);
            n++;
        }
        _masterTx.Flush();
        _masterRx.Release();
        while (_slaveRx.TryReceive(out _)) { }
        _slaveRx.Release();
        return n;
    }

    /// <summary>A 5000-byte frame chained over three 2048-byte slots, gathered back on the other side.</summary>
    [Benchmark]
    public int ChainedFrame()
    {
        _chainTx.TrySend(_jumbo);
        _chainTx.Flush();
        _chainRx.TryReceive(out var p);
        int n = p.CopyTo(_scratch);
        _chainRx.Release();
        return n;
    }

    /// <summary>Building and verifying one benchmark frame (what the load client adds per frame).</summary>
    [Benchmark]
    public bool WriteAndVerifyFrame()
    {
        Span<byte> f = stackalloc byte[64];
        EthernetFrame.WriteBenchmark(f, [2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], 7, 0);
        EthernetFrame.SwapMacs(f);
        return EthernetFrame.VerifyEcho(f, 64, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 7);
    }
}
