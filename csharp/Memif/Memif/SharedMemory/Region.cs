using Memif.Native;

namespace Memif.SharedMemory;

/// <summary>
/// One memory region: a memfd (or any mappable fd a peer sent) mapped shared. The slave creates
/// regions; the master maps what it receives, after checking the fd really is that large, since
/// touching a mapping past the end of its file is SIGBUS, not an exception.
/// </summary>
public sealed unsafe class Region : IDisposable
{
    private int _fd;

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
        error = null;
        long fileSize = Libc.lseek(fd, 0, Libc.SEEK_END);
        if (size == 0 || fileSize < 0 || (ulong)fileSize < size)
        {
            error = "Invalid region size";
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

    private static byte* Map(int fd, ulong size)
    {
        void* p = Libc.mmap(null, (nuint)size, Libc.PROT_READ_WRITE, Libc.MAP_SHARED, fd, 0);
        if (p == (void*)-1) throw new MemifException($"mmap({size}): {Libc.ErrorText(Libc.LastError)}");
        return (byte*)p;
    }

    /// <summary>True when [offset, offset+length) lies inside the region (no overflow: 64-bit sums of 32-bit values).</summary>
    public bool Contains(ulong offset, ulong length) => offset + length <= Size;

    public void Dispose()
    {
        if (Base != null)
        {
            Libc.munmap(Base, (nuint)Size);
            Base = null;
        }
        Libc.CloseQuietly(ref _fd);
    }
}
