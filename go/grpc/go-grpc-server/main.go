// go-grpc-server: the bench.Echo and bench.Crypto gRPC services on grpc-go, over h2c (HTTP/2
// with prior knowledge) on TCP or a Unix domain socket, following docs/contract.md "Servers".
//
// Generated code: bench.proto is compiled at build time into build/_gopath/src/bench/benchpb
// (the go:generate lines below; the harness's Go builder runs go generate, then go build in
// GOPATH mode with build/_gopath first). bench.proto has no go_package option, so the M flags
// name its import path.
//
//go:generate mkdir -p ../build/_gopath/src/bench/benchpb
//go:generate protoc -I ../../../proto --go_out=../build/_gopath/src/bench/benchpb --go_opt=paths=source_relative --go_opt=Mbench.proto=bench/benchpb --go-grpc_out=../build/_gopath/src/bench/benchpb --go-grpc_opt=paths=source_relative --go-grpc_opt=Mbench.proto=bench/benchpb bench.proto
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"bench/benchpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

const program = "go-grpc-server"

// How long in-flight calls get to finish after SIGTERM/SIGINT before the process exits anyway.
const grace = 300 * time.Millisecond

type options struct {
	host, port, unix string
	maxMessage       int
	defaults         bool
}

const usage = `usage: go-grpc-server [--host HOST] [--port PORT] | [--unix PATH]
                      [--max-message-bytes N] [--defaults]
  --host HOST               address to listen on (default 127.0.0.1)
  --port PORT               TCP port, 0-65535 (default 0: the kernel picks one)
  --unix PATH               listen on a Unix domain socket instead of TCP
  --max-message-bytes N     largest message received or sent (default 4194304); a larger
                            one ends its call with RESOURCE_EXHAUSTED
  --defaults                grpc-go's default server settings (only the message limits set),
                            to measure what the tuning buys
Prints "READY tcp HOST:PORT" (or "READY unix PATH") on stdout once listening.
Services: bench.Echo, bench.Crypto, grpc.health.v1.Health.
`

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		if errors.Is(err, errHelp) {
			fmt.Print(usage)
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(1)
	}
	os.Exit(0)
}

var errHelp = errors.New("help")

func parseArgs(args []string) (options, error) {
	opts := options{host: "127.0.0.1", port: "0", maxMessage: 4 << 20}
	hostOrPort := false
	for i := 0; i < len(args); i++ {
		name, value, inline := strings.Cut(args[i], "=")
		takeValue := func(what string) (string, error) {
			if inline {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value: %s", name, what)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "--host":
			if opts.host, err = takeValue("an address to listen on, e.g. 127.0.0.1"); err != nil {
				return opts, err
			}
			if opts.host == "" {
				return opts, errors.New("--host needs an address to listen on, e.g. 127.0.0.1, not an empty string")
			}
			hostOrPort = true
		case "--port":
			if opts.port, err = takeValue("a port number from 0 to 65535"); err != nil {
				return opts, err
			}
			if n, err := strconv.ParseUint(opts.port, 10, 16); err != nil || strconv.FormatUint(n, 10) != opts.port {
				return opts, fmt.Errorf("--port accepts a whole number from 0 to 65535, not '%s'", opts.port)
			}
			hostOrPort = true
		case "--unix":
			if opts.unix, err = takeValue("the path of the socket file"); err != nil {
				return opts, err
			}
			if opts.unix == "" {
				return opts, errors.New("--unix needs the path of the socket file, not an empty string")
			}
		case "--max-message-bytes":
			text, err := takeValue("a number of bytes from 1 to 2147483647")
			if err != nil {
				return opts, err
			}
			n, err := strconv.ParseInt(text, 10, 32)
			if err != nil || n < 1 {
				return opts, fmt.Errorf("--max-message-bytes accepts a whole number of bytes from 1 to 2147483647, not '%s'", text)
			}
			opts.maxMessage = int(n)
		case "--defaults":
			if inline {
				return opts, errors.New("--defaults takes no value")
			}
			opts.defaults = true
		case "--help", "-h":
			return opts, errHelp
		default:
			return opts, fmt.Errorf("unknown argument '%s' (accepted: --host HOST, --port PORT, --unix PATH, --max-message-bytes N, --defaults, --help)", args[i])
		}
	}
	if opts.unix != "" && hostOrPort {
		return opts, errors.New("--unix cannot be combined with --host or --port: it listens on the socket file instead")
	}
	return opts, nil
}

// serverOptions: grpc-go tuned for many small concurrent calls, or its defaults. The reasons are
// in README.md ("Tuning").
func serverOptions(opts options, workers int) []grpc.ServerOption {
	limits := []grpc.ServerOption{grpc.MaxRecvMsgSize(opts.maxMessage), grpc.MaxSendMsgSize(opts.maxMessage)}
	if opts.defaults {
		return limits
	}
	return append(limits,
		grpc.NumStreamWorkers(uint32(workers)),
		grpc.MaxConcurrentStreams(1000),
		grpc.InitialWindowSize(1<<20),
		grpc.InitialConnWindowSize(16<<20),
		grpc.ReadBufferSize(256<<10),
		grpc.WriteBufferSize(256<<10),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	)
}

// newServer makes the signing keys and a server with every service registered.
func newServer(opts options, workers int) (*grpc.Server, error) {
	crypto, err := newCryptoService()
	if err != nil {
		return nil, fmt.Errorf("cannot make the signing keys: %v", err)
	}
	server := grpc.NewServer(serverOptions(opts, workers)...)
	benchpb.RegisterEchoServer(server, echoService{})
	benchpb.RegisterCryptoServer(server, crypto)
	healthService := health.NewServer() // "" is SERVING from the start
	for _, name := range []string{"bench.Echo", "bench.Crypto", "grpc.health.v1.Health"} {
		healthService.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(server, healthService)
	return server, nil
}

func run(opts options) error {
	// The runtime sizes GOMAXPROCS from sched_getaffinity at start (runtime.getproccount), so under
	// taskset it is the CPUs this process may run on, not the machine's; a GOMAXPROCS variable wins.
	workers := runtime.GOMAXPROCS(0)
	if !opts.defaults && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}

	server, err := newServer(opts, workers)
	if err != nil {
		return err
	}

	// Before listening, so a signal that comes right after READY is not missed.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	listener, ready, err := listen(opts)
	if err != nil {
		return err
	}
	mode := "tuned"
	if opts.defaults {
		mode = "grpc-go defaults"
	}
	fmt.Fprintf(os.Stderr, "%s: %s, GOMAXPROCS %d (CPUs in the affinity mask: %d), %s\n",
		program, runtime.Version(), workers, runtime.NumCPU(), mode)

	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	fmt.Fprintln(os.Stdout, ready) // os.Stdout is unbuffered: this is the flush

	select {
	case err := <-served:
		return fmt.Errorf("serving stopped: %v", err)
	case <-signals:
	}
	// GracefulStop closes the listener (removing a Unix socket file), sends GOAWAY on every
	// connection and waits for the running calls. Calls that outlast the grace (a bidirectional
	// stream never ends by itself) are ended by the exit, which closes every socket. Not Stop():
	// with NumStreamWorkers, grpc-go 1.33's Stop closes the workers' channels while a connection's
	// reader may still hand them a new stream, a "send on closed channel" panic (grpc-go issue
	// 6854, fixed in 1.60), and a panic would exit with status 2 instead of 0.
	stopped := make(chan struct{})
	go func() { server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
	case <-signals: // a second signal: no more waiting
	}
	return nil
}

// listen binds the socket and returns the ready line for it.
func listen(opts options) (net.Listener, string, error) {
	if opts.unix != "" {
		removeStaleSocket(opts.unix)
		listener, err := net.Listen("unix", opts.unix)
		if err != nil {
			return nil, "", fmt.Errorf("cannot listen on unix socket %s: %v", opts.unix, err)
		}
		return listener, "READY unix " + opts.unix, nil
	}
	network := "tcp"
	if ip := net.ParseIP(opts.host); ip != nil {
		network = "tcp6"
		if ip.To4() != nil {
			network = "tcp4" // so 0.0.0.0 is IPv4 only and the ready line says 0.0.0.0, as asked
		}
	}
	// Go asks for the kernel's largest backlog (net.core.somaxconn) and sets TCP_NODELAY on every
	// accepted connection by default, as the contract wants.
	address := net.JoinHostPort(opts.host, opts.port)
	listener, err := net.Listen(network, address)
	if err != nil {
		return nil, "", fmt.Errorf("cannot listen on %s: %v", address, err)
	}
	return listener, "READY tcp " + listener.Addr().String(), nil
}

// removeStaleSocket removes a socket file nobody answers on (left by a killed server). Anything
// else at the path, or a socket a live server answers on, is left alone, and the bind fails clearly.
func removeStaleSocket(path string) {
	info, err := os.Lstat(path)
	if err != nil || info.Mode()&os.ModeSocket == 0 {
		return
	}
	conn, err := net.DialTimeout("unix", path, 200*time.Millisecond)
	if err == nil {
		conn.Close()
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		os.Remove(path)
	}
}
