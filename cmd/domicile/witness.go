package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"domicile/checkpoint"
	"domicile/httpapi"
	"domicile/witness"
)

// witnessCommand is `domicile witness`.
var witnessCommand = command{name: "witness", summary: "run a stand-alone witness that cosigns cells' log checkpoints", run: runWitness}

const witnessUsage = `usage:
  domicile witness serve --key FILE --data DIR --logs FILE [--addr ADDR] [--name NAME]
  domicile witness key --key FILE [--name NAME]

serve runs a C2SP tlog-witness (POST /add-checkpoint) until interrupted: it
cosigns a checkpoint of a log listed in --logs only if the log signed it and
it is consistent with the last checkpoint it cosigned for that log, which it
keeps, fsynced, in DIR/witness.state. key prints the witness's verifier key,
for the cells' deployment file and for verifiers (domicile verify
--witness-key). Both generate the key into FILE (mode 0600) if it does not
exist, named --name.

The --logs file lists the logs the witness cosigns, one log verifier key
per line (domicile cells --log-key CELL prints a cell's); '#' starts a
comment. Restart the witness to change it.
`

// runWitness runs `domicile witness`. serve returns when ctx is cancelled,
// after a graceful shutdown.
func runWitness(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, witnessUsage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return witnessServe(ctx, env, args[1:])
	case "key":
		return witnessKey(env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stderr, witnessUsage)
		return nil
	default:
		fmt.Fprintf(env.Stderr, "domicile witness: unknown subcommand %q\n%s", args[0], witnessUsage)
		return errUsage
	}
}

// defaultWitnessName names a new witness key after the machine.
func defaultWitnessName() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return -1
	}, strings.ToLower(h))
	if h == "" {
		h = "localhost"
	}
	return "witness." + h
}

// witnessCosigner returns the witness's cosigner from the key file at
// path, generating a key named name (mode 0600) if the file does not
// exist. An existing file must not be readable by others, and its name
// must be name when name is given.
func witnessCosigner(path, name string, now func() time.Time) (*checkpoint.Cosigner, error) {
	gen := name
	if gen == "" {
		gen = defaultWitnessName()
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--key %s: the key file is readable by others (mode %04o); chmod 600 it", path, fi.Mode().Perm())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("--key: %w", err)
	}
	skey, vkey, err := keyFile(path, func() (string, string, error) { return checkpoint.GenerateCosignerKey(rand.Reader, gen) })
	if err != nil {
		return nil, fmt.Errorf("--key %s: %w", path, err)
	}
	c, err := checkpoint.NewCosigner(skey, now)
	if err != nil || c.Verifier() != vkey {
		return nil, fmt.Errorf("--key %s: not a witness key file (a PRIVATE+KEY line and its verifier key line)", path)
	}
	if name != "" && c.Name() != name {
		return nil, fmt.Errorf("--name %q: the key in %s is named %q; a witness keeps its name with its key", name, path, c.Name())
	}
	return c, nil
}

func witnessKey(env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "witness key")
	keyPath := fs.String("key", "", "the witness's key file (generated if absent, mode 0600)")
	name := fs.String("name", "", "the witness's name, when generating its key (default witness.<hostname>)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), witnessUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyPath == "" || fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "domicile witness key: --key is required")
		fs.Usage()
		return errUsage
	}
	c, err := witnessCosigner(*keyPath, *name, env.Now)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, c.Verifier())
	return nil
}

func witnessServe(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "witness serve")
	addr := fs.String("addr", "127.0.0.1:8710", "listen address")
	keyPath := fs.String("key", "", "the witness's key file (generated if absent, mode 0600); keep it apart from --data")
	data := fs.String("data", "", "directory of the witness's state: the last checkpoint cosigned for each log")
	logsPath := fs.String("logs", "", "file listing the logs to cosign: one log verifier key per line")
	name := fs.String("name", "", "the witness's name, when generating its key (default witness.<hostname>)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), witnessUsage); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"key", *keyPath}, {"data", *data}, {"logs", *logsPath}} {
		if f.v == "" {
			missing = append(missing, "--"+f.name)
		}
	}
	if len(missing) > 0 || fs.NArg() > 0 {
		if len(missing) > 0 {
			fmt.Fprintf(env.Stderr, "domicile witness serve: missing %s\n", strings.Join(missing, ", "))
		} else {
			fmt.Fprintf(env.Stderr, "domicile witness serve: unexpected argument %q\n", fs.Arg(0))
		}
		fs.Usage()
		return errUsage
	}
	logList, err := readLimited(*logsPath, witness.MaxLogListBytes)
	if err != nil {
		return fmt.Errorf("--logs: %w", err)
	}
	logKeys, err := witness.ParseLogList(logList)
	if err != nil {
		return fmt.Errorf("--logs %s: %w", *logsPath, err)
	}
	cos, err := witnessCosigner(*keyPath, *name, env.Now)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	unlock, err := lockDir(*data)
	if err != nil {
		return fmt.Errorf("--data %s: %w", *data, err)
	}
	defer unlock()
	w, err := witness.New(witness.Config{Cosigner: cos, Logs: logKeys, State: witness.NewFileState(filepath.Join(*data, "witness.state"))})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	hs := &http.Server{Handler: httpapi.NewWitnessHandler(w, log), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(env.Stdout, "domicile witness: key %s\n", cos.Verifier())
	fmt.Fprintf(env.Stdout, "domicile witness: cosigning %d logs\n", len(logKeys))
	fmt.Fprintf(env.Stdout, "domicile witness: listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// readLimited reads a file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is over %d bytes", path, max)
	}
	return b, nil
}
