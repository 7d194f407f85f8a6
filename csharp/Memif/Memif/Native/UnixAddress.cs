using System.Text;

namespace Memif.Native;

/// <summary>
/// A sockaddr_un for a filesystem path or, when the name starts with '@', an abstract name
/// (libmemif's convention). Abstract addresses carry no trailing NUL: DPDK and VPP count
/// exactly 2 + 1 + strlen(name) bytes, and the kernel compares the length too.
/// </summary>
internal readonly struct UnixAddress
{
    private const int PathCapacity = 108;
    private readonly byte[] _bytes;

    public string Display { get; }
    public bool IsAbstract { get; }
    public string? FilesystemPath => IsAbstract ? null : Display;
    public uint Length => (uint)_bytes.Length;

    private UnixAddress(byte[] bytes, string display, bool isAbstract)
    {
        _bytes = bytes;
        Display = display;
        IsAbstract = isAbstract;
    }

    public static UnixAddress Parse(string socketPath)
    {
        if (string.IsNullOrEmpty(socketPath))
            throw new ArgumentException("memif socket path is empty", nameof(socketPath));
        bool isAbstract = socketPath[0] == '@';
        byte[] name = Encoding.UTF8.GetBytes(isAbstract ? socketPath[1..] : socketPath);
        // Filesystem paths need room for their NUL; abstract names use the leading 0 byte instead.
        if (name.Length + 1 > PathCapacity || name.Length == 0)
            throw new ArgumentException($"memif socket path must be 1..{PathCapacity - 2} bytes: '{socketPath}'", nameof(socketPath));

        var bytes = new byte[2 + (isAbstract ? 1 + name.Length : name.Length + 1)];
        bytes[0] = Libc.AF_UNIX; // sa_family_t, little-endian u16
        name.CopyTo(bytes, isAbstract ? 3 : 2);
        return new UnixAddress(bytes, socketPath, isAbstract);
    }

    public unsafe int Bind(int fd)
    {
        fixed (byte* p = _bytes) return Libc.bind(fd, p, Length);
    }

    public unsafe int Connect(int fd)
    {
        fixed (byte* p = _bytes) return Libc.connect(fd, p, Length);
    }
}
