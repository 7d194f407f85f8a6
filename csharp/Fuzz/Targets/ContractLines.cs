using System.Text;
using Bench.Harness.LoadTools;
using Bench.Harness.Run;

namespace Fuzz.Targets;

/// <summary>
/// The contract's READY and RESULT lines (harness/src/Bench.Harness/Run/ContractLines.cs), each
/// line of the input read as the harness reads a server's or a client's stdout, READY lines on
/// to the client address made from them. The rejection is a <see cref="FormatException"/>; a TCP
/// endpoint with no host or a port no socket takes would fail later, far from the line, so it
/// must be rejected too.
/// </summary>
sealed class ContractLines() : FuzzTarget("contract-lines", "ReadyLine and ResultLine, each line of the input")
{
    protected override void Feed(ReadOnlySpan<byte> input)
    {
        foreach (var line in Encoding.UTF8.GetString(input).Split('\n'))
        {
            if (ReadyLine.Matches(line))
            {
                var ready = ReadyLine.Parse(line);
                ContractArguments.Address(ready);
                if (ready.Transport != "tcp") continue;
                var (host, port) = ready.TcpEndpoint;
                if (host.Length == 0 || port is < 1 or > 65535)
                    throw new InvariantException($"'{line}' gave host '{host}' port {port}");
            }
            else if (ResultLine.Matches(line))
            {
                ResultLine.Parse(line);
            }
        }
    }

    protected override bool IsRejection(Exception e) => e is FormatException;
}
