// Command domicile runs and operates a domicile deployment: the service
// itself (serve), its clients (subject, record, object, token), the law
// engine (assess), the log verifier (verify) and the key custodian (keyd).
//
// Each subcommand lives in its own file; commandList in this file names
// them all, so main stays thin and tests can drive any subcommand through
// Main without starting a process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cmdEnv, args []string) error
}

// cmdEnv is what a subcommand may touch of the outside world. Tests fill it
// with buffers and a fixed clock.
type cmdEnv struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
	Getenv func(string) string
	Now    func() time.Time
}

// commandList is every subcommand of the binary, in the order of its usage
// text. Adding a command means adding it here: there is no registration
// elsewhere.
var commandList = []command{
	serveCommand, adminCommand,
	tokenCommand, subjectCommand, recordCommand, objectCommand,
	cellsCommand, keysCommand, keydCommand, backupCommand,
	verifyCommand, checkCommand, witnessCommand,
	assessCommand, rulesCommand,
	mechanismCommand, consentCommand, transferCommand,
	requestCommand,
	noticeCommand, statementCommand, transparencyCommand,
	migrateCommand,
	benchCommand,
}

// findCommand returns the subcommand named name.
func findCommand(name string) (command, bool) {
	for _, c := range commandList {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// errUsage is returned when the arguments are wrong; the message has been
// printed already.
var errUsage = errors.New("usage")

// Main runs the binary with args (without the program name) and returns the
// exit status. It is what main calls and what end-to-end tests call.
func Main(ctx context.Context, env *cmdEnv, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := findCommand(args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "domicile: unknown command %q\n", args[0])
		usage(env.Stderr)
		return 2
	}
	if err := c.run(ctx, env, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(env.Stderr, "domicile %s: %v\n", c.name, err)
		}
		return exitCode(err)
	}
	return 0
}

// exitCode maps an error to a process status: 2 for usage errors, 1 otherwise.
func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: domicile <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commandList {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'domicile <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(env *cmdEnv, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("domicile "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parseFlags parses args, turning a flag error into errUsage (the flag
// package has printed it).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := &cmdEnv{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv, Now: time.Now}
	os.Exit(Main(ctx, env, os.Args[1:]))
}
