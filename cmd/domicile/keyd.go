package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"domicile/kms/filekms"
	"domicile/kms/keyd"
)

// keydCommand is `domicile keyd`.
var keydCommand = command{name: "keyd", summary: "run an external key custodian", run: runKeyd}

const keydUsage = `usage:
  domicile keyd serve --policy FILE --keyring FILE --tls-cert FILE --tls-key FILE --client-ca FILE --log FILE [--addr ADDR]
  domicile keyd init --dir DIR [--host NAMES] [--cell IDS]

serve runs the custodian until interrupted. init writes a development CA,
server and client certificates, and an example policy into DIR.
`

// runKeyd runs `domicile keyd`. serve returns when ctx is cancelled, after a
// graceful shutdown.
func runKeyd(ctx context.Context, env *cmdEnv, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, keydUsage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return keydServe(ctx, env, args[1:])
	case "init":
		return keydInit(env, args[1:])
	case "-h", "--help", "help":
		fmt.Fprint(env.Stderr, keydUsage)
		return nil
	default:
		fmt.Fprintf(env.Stderr, "domicile keyd: unknown subcommand %q\n%s", args[0], keydUsage)
		return errUsage
	}
}

func keydServe(ctx context.Context, env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "keyd serve")
	addr := fs.String("addr", "127.0.0.1:8443", "listen address")
	policyPath := fs.String("policy", "", "policy file (YAML)")
	keyringPath := fs.String("keyring", "", "the custodian's keyring file (created on first start, mode 0600)")
	certPath := fs.String("tls-cert", "", "server certificate (PEM)")
	keyPath := fs.String("tls-key", "", "server private key (PEM)")
	caPath := fs.String("client-ca", "", "CA certificate(s) that issue cell client certificates (PEM)")
	logPath := fs.String("log", "", "decision log, JSON lines (created with mode 0600, appended)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"policy", *policyPath}, {"keyring", *keyringPath},
		{"tls-cert", *certPath}, {"tls-key", *keyPath}, {"client-ca", *caPath}, {"log", *logPath}} {
		if f.v == "" {
			missing = append(missing, "--"+f.name)
		}
	}
	if len(missing) > 0 || fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "domicile keyd serve: missing %s\n", strings.Join(missing, ", "))
		fs.Usage()
		return errUsage
	}
	policyText, err := os.ReadFile(*policyPath)
	if err != nil {
		return fmt.Errorf("read policy: %w", err)
	}
	policy, err := keyd.ParsePolicy(policyText)
	if err != nil {
		return fmt.Errorf("%s: %w", *policyPath, err)
	}
	read := func(p string) ([]byte, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		return b, nil
	}
	certPEM, err := read(*certPath)
	if err != nil {
		return err
	}
	keyPEM, err := read(*keyPath)
	if err != nil {
		return err
	}
	caPEM, err := read(*caPath)
	if err != nil {
		return err
	}
	tlsCfg, err := keyd.ServerTLSConfig(certPEM, keyPEM, caPEM)
	if err != nil {
		return err
	}
	kek, err := filekms.Open(ctx, filekms.Config{Path: *keyringPath, Now: env.Now})
	if err != nil {
		return err
	}
	srv, err := keyd.NewServer(keyd.ServerConfig{KEK: kek, Policy: policy, DecisionLog: *logPath, Now: env.Now})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := srv.HTTPServer(tlsCfg)
	hs.ErrorLog = nil // TLS handshake noise from refused clients stays out of stderr
	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	fmt.Fprintf(env.Stderr, "keyd: KEK %s, %d policy clauses; listening on https://%s\n", kek.ID(), len(policy.Clauses), ln.Addr())
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
	fmt.Fprintln(env.Stderr, "keyd: stopped")
	return nil
}

func keydInit(env *cmdEnv, args []string) error {
	fs := newFlagSet(env, "keyd init")
	dir := fs.String("dir", "", "directory to write into (created if absent; existing files are not overwritten)")
	hosts := fs.String("host", "localhost,127.0.0.1", "comma-separated DNS names and IP addresses of the custodian")
	cells := fs.String("cell", "cn-gz1", "comma-separated cell ids to issue client certificates for")
	validity := fs.Duration("validity", 365*24*time.Hour, "certificate validity")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "domicile keyd init: --dir is required")
		fs.Usage()
		return errUsage
	}
	hostList, cellList := keydSplitList(*hosts), keydSplitList(*cells)
	if len(hostList) == 0 || len(cellList) == 0 {
		return errors.New("need at least one --host and one --cell")
	}
	now := env.Now()
	ca, err := keyd.NewCA("domicile keyd development CA", now, *validity)
	if err != nil {
		return err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	serverCert, serverKey, err := ca.IssueServer(hostList, now, *validity)
	if err != nil {
		return err
	}
	type file struct {
		name string
		data []byte
		mode os.FileMode
	}
	files := []file{
		{"ca.crt", ca.CertPEM, 0o644},
		{"ca.key", caKey, 0o600},
		{"server.crt", serverCert, 0o644},
		{"server.key", serverKey, 0o600},
		{"policy.yaml", []byte(keyd.ExamplePolicy), 0o644},
	}
	for _, c := range cellList {
		if strings.ContainsAny(c, `/\`) || c == "." || c == ".." {
			return fmt.Errorf("cell id %q cannot name a file", c)
		}
		cert, key, err := ca.IssueClient(c, now, *validity)
		if err != nil {
			return err
		}
		files = append(files, file{"client-" + c + ".crt", cert, 0o644}, file{"client-" + c + ".key", key, 0o600})
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(*dir, f.name)); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite", filepath.Join(*dir, f.name))
		}
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFileSync(filepath.Join(*dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	d := *dir
	fmt.Fprintf(env.Stdout, "wrote a development CA, server and client certificates and an example policy to %s\n", d)
	fmt.Fprintf(env.Stdout, "ca.key signs new certificates: keep it offline in production.\n\nstart the custodian:\n")
	fmt.Fprintf(env.Stdout, "  domicile keyd serve --addr %s:8443 --policy %s --keyring %s --tls-cert %s --tls-key %s --client-ca %s --log %s\n",
		hostList[0], filepath.Join(d, "policy.yaml"), filepath.Join(d, "keyring.json"), filepath.Join(d, "server.crt"),
		filepath.Join(d, "server.key"), filepath.Join(d, "ca.crt"), filepath.Join(d, "decisions.jsonl"))
	return nil
}

func keydSplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
