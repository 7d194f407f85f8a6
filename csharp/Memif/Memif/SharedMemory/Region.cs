using Memif.Native;

namespace Memif.SharedMemory;

/// <summary>
/// One memory region: a memfd (or any mappable fd a peer sent) mapped shared. The slave creates
/// regions; the master maps what it receives only once the file can no longer shrink, since
/// touching a mapping past the end of its file is SIGBUS, which kills the process.
/// </summary>
public sealed unsafe class Region : IDisposable
{
    private int _fd;
    private bool _retired;

    public byte* Base { get; private set; }
    public ulong Size { get; }
    public int Fd => _fd;

    private Region(int fd, byte* @base, ulong size)
    {
        _fd = fd;
        Base = @base;
        Size = size;
    }

    /// <summary>Slave side: a sealed memfd (F_SEAL_SHRINK, as DPDK does, so the master can trust its size).</summary>
    public static Region Create(string name, ulong size)
    {
        int fd = Libc.memfd_create(name, Libc.MFD_ALLOW_SEALING | Libc.MFD_CLOEXEC);
        if (fd < 0) throw new MemifException($"memfd_create: {Libc.ErrorText(Libc.LastError)}");
        try
        {
            if (Libc.ftruncate(fd, (long)size) < 0)
                throw new MemifException($"ftruncate({size}): {Libc.ErrorText(Libc.LastError)}");
            // Seal after sizing: shrinking the memfd under the peer's mapping would SIGBUS it.
            if (Libc.fcntl(fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SHRINK) < 0)
                throw new MemifException($"F_ADD_SEALS: {Libc.ErrorText(Libc.LastError)}");
            return new Region(fd, Map(fd, size), size);
        }
        catch
        {
            Libc.close(fd);
            throw;
        }
    }

    /// <summary>Master side: takes ownership of <paramref name="fd"/> (closed on failure too).</summary>
    public static Region Attach(int fd, ulong size, out string? error)
    {
        // Seal first, then measure: once sealed the file can only grow, so the size we check stays true.
        error = SealAgainstShrinking(fd) ?? SizeError(fd, size);
        if (error is not null)
        {
            Libc.close(fd);
            return null!;
        }
        try
        {
            return new Region(fd, Map(fd, size), size);
        }
        catch (MemifException)
        {
            error = "Region mmap failed";
            Libc.close(fd);
            return null!;
        }
    }

    /// <summary>
    /// The one thing a peer could do to a mapping that no bounds check catches is shrink the file
    /// under it. F_SEAL_SHRINK rules that out for good. DPDK, VPP and libmemif seal their memfds
    /// this way; a memfd made sealable but left unsealed gets the seal from us (it binds the file,
    /// so the peer's descriptor too). Anything else is refused.
    /// </summary>
    private static string? SealAgainstShrinking(int fd)
    {
        int seals = Libc.fcntl(fd, Libc.F_GET_SEALS, 0);
        // EINVAL: not a memfd (a disk file, a hugetlbfs file opened by path, a socket...).
        if (seals < 0) return "Region fd cannot be sealed (not a memfd)";
        if ((seals & Libc.F_SEAL_SHRINK) != 0) return null;
        // EPERM: F_SEAL_SEAL is set (a memfd created without MFD_ALLOW_SEALING, or sealed shut).
        if (Libc.fcntl(fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SHRINK) < 0) return "Region memfd cannot be sealed (made without MFD_ALLOW_SEALING)";
        return null;
    }

    private static string? SizeError(int fd, ulong size)
    {
        long fileSize = Libc.lseek(fd, 0, Libc.SEEK_END);
        return size == 0 || fileSize < 0 || (ulong)fileSize < size ? "Invalid region size" : null;
    }

    private static byte* Map(int fd, ulong size)
    {
        void* p = Libc.mmap(null, (nuint)size, Libc.PROT_READ_WRITE, Libc.MAP_SHARED, fd, 0);
        if (p == (void*)-1) throw new MemifException($"mmap({size}): {Libc.ErrorText(Libc.LastError)}");
        return (byte*)p;
    }

    /// <summary>True when [offset, offset+length) lies inside the region (no overflow: 64-bit sums of 32-bit values).</summary>
    public bool Contains(ulong offset, ulong length) => offset + length <= Size;

    /// <summary>
    /// Ends the sharing while queues or spans may still point here, on this thread or another: one
    /// mmap swaps the shared pages for private zero pages, so a late access reads zeros instead of
    /// faulting. The address range itself goes back when the region is collected.
    /// </summary>
    public void Retire()
    {
        if (Base != null && !_retired)
        {
            // Should the swap fail (out of map entries) the shared mapping stays: sealed, so still safe to touch.
            Libc.mmap(Base, (nuint)Size, Libc.PROT_READ_WRITE,
                Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_FIXED | Libc.MAP_NORESERVE, -1, 0);
            _retired = true;
        }
        Libc.CloseQuietly(ref _fd);
    }

    /// <summary>Unmaps at once: only for a region nothing else points into (a handshake that failed, a benchmark).</summary>
    public void Dispose()
    {
        Libc.CloseQuietly(ref _fd);
        if (_retired) return; // queues may still point here: the finalizer unmaps
        if (Base != null)
        {
            Libc.munmap(Base, (nuint)Size);
            Base = null;
        }
        GC.SuppressFinalize(this);
    }

    ~Region()
    {
        if (Base != null) Libc.munmap(Base, (nuint)Size);
    }
}
