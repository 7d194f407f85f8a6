using System.Runtime.InteropServices;

namespace GrpcBench.Server;

/// <summary>.NET exposes no file type for sockets (S_IFSOCK), so ask lstat(2) directly.</summary>
static class UnixSocketFile
{
    [DllImport("libc", EntryPoint = "lstat", SetLastError = true)]
    private static extern int LStat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);

    public static bool IsSocket(string path)
    {
        // st_mode's offset in struct stat differs by architecture; elsewhere, assume not a socket.
        var modeOffset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,
            Architecture.Arm64 => 16,
            _ => -1,
        };
        var buffer = new byte[256];
        if (modeOffset < 0 || LStat(path, buffer) != 0) return false;
        const uint typeMask = 0xF000, socket = 0xC000;
        return (BitConverter.ToUInt32(buffer, modeOffset) & typeMask) == socket;
    }
}
