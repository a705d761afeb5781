//go:build cgo

package pkcs11kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"domicile/kms"
	"domicile/kms/kmstest"
)

// testConfig returns the token configuration from the environment that
// .ci/softhsm.sh prints, or skips the test.
func testConfig(t *testing.T) Config {
	t.Helper()
	module := os.Getenv("DOMICILE_TEST_PKCS11_MODULE")
	if module == "" {
		t.Skip("PKCS#11 tests need an HSM: run `eval \"$(bash .ci/softhsm.sh)\"` to install SoftHSM2 and set " +
			"DOMICILE_TEST_PKCS11_MODULE, DOMICILE_TEST_PKCS11_TOKEN, DOMICILE_TEST_PKCS11_PIN and SOFTHSM2_CONF")
	}
	token := os.Getenv("DOMICILE_TEST_PKCS11_TOKEN")
	if token == "" {
		token = "domicile-test"
	}
	return Config{
		Module:         module,
		TokenLabel:     token,
		PIN:            os.Getenv("DOMICILE_TEST_PKCS11_PIN"),
		KeyLabelPrefix: uniquePrefix(t),
	}
}

// uniquePrefix keeps tests that share a token apart.
func uniquePrefix(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "domicile-test-" + hex.EncodeToString(b)
}

func MustOpen(t *testing.T, cfg Config) *KEK {
	t.Helper()
	k, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(%v) = %v", cfg.LogValue(), err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func TestConformance(t *testing.T) {
	base := testConfig(t)
	kmstest.Run(t, func(t *testing.T) kms.KEK {
		cfg := base
		cfg.KeyLabelPrefix = uniquePrefix(t)
		return MustOpen(t, cfg)
	})
}

func TestReopenSeesVersions(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	k := MustOpen(t, cfg)
	v1, ct := kmstest.MustWrap(t, k, bytes.Repeat([]byte{1}, 32), []byte("aad"))
	v2, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k.Close()

	// A second KEK on the same module and prefix, as after a restart.
	k2 := MustOpen(t, cfg)
	cur, all, err := k2.Versions(ctx)
	if err != nil || cur != v2 || len(all) != 2 {
		t.Fatalf("reopened Versions() = %d, %v, %v; want %d, [%d %d]", cur, all, err, v2, v1, v2)
	}
	if pt, err := k2.Unwrap(ctx, kmstest.Access, v1, ct, []byte("aad")); err != nil || !bytes.Equal(pt, bytes.Repeat([]byte{1}, 32)) {
		t.Errorf("reopened Unwrap(version %d) = %x, %v", v1, pt, err)
	}
	if v, _ := kmstest.MustWrap(t, k2, []byte("k"), nil); v != v2 {
		t.Errorf("reopened Wrap used version %d, want %d", v, v2)
	}
}

func TestKeyNeverLeavesToken(t *testing.T) {
	cfg := testConfig(t)
	k := MustOpen(t, cfg)
	k.mu.RLock()
	h := k.handles[k.current]
	k.mu.RUnlock()
	err := k.withSession(context.Background(), func(s pkcs11.SessionHandle) error {
		attrs, err := k.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
		})
		if err != nil {
			return err
		}
		if !bytes.Equal(attrs[0].Value, []byte{1}) || !bytes.Equal(attrs[1].Value, []byte{0}) {
			t.Errorf("key attributes sensitive=%x extractable=%x, want 01 00", attrs[0].Value, attrs[1].Value)
		}
		if got, want := string(attrs[2].Value), cfg.KeyLabelPrefix+"-v1"; got != want {
			t.Errorf("key label = %q, want %q", got, want)
		}
		if v, err := k.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil && len(v) == 1 && len(v[0].Value) > 0 {
			t.Errorf("CKA_VALUE of the KEK was readable")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefuses(t *testing.T) {
	base := testConfig(t)
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"wrong PIN", func(c *Config) { c.PIN = "not-the-pin" }, "login"},
		{"unknown token", func(c *Config) { c.TokenLabel = "no-such-token" }, "no token labelled"},
		{"missing module", func(c *Config) { c.Module = "/nonexistent/libpkcs11.so" }, "cannot load"},
		{"no prefix", func(c *Config) { c.KeyLabelPrefix = "" }, "prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.modify(&cfg)
			k, err := Open(context.Background(), cfg)
			if err == nil {
				k.Close()
				t.Fatalf("Open(%s) = nil error", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%s) = %v, want an error mentioning %q", tc.name, err, tc.want)
			}
			if base.PIN != "" && strings.Contains(err.Error(), base.PIN) {
				t.Errorf("error %q holds the PIN", err)
			}
		})
	}
}

func TestLogValueRedactsPIN(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("open", "hsm", Config{Module: "m", TokenLabel: "t", PIN: "s3cret-pin", KeyLabelPrefix: "p"})
	if strings.Contains(buf.String(), "s3cret-pin") {
		t.Errorf("log line %q holds the PIN", buf.String())
	}
}

func TestSharedModule(t *testing.T) {
	ctx := context.Background()
	base := testConfig(t)
	keks := make([]*KEK, 3)
	for i := range keks {
		cfg := base
		cfg.KeyLabelPrefix = fmt.Sprintf("%s-%d", base.KeyLabelPrefix, i)
		cfg.Sessions = 2
		keks[i] = MustOpen(t, cfg)
	}
	keks[0].Close()
	for i, k := range keks[1:] {
		v, ct := kmstest.MustWrap(t, k, []byte("data-key"), nil)
		if _, err := k.Unwrap(ctx, kmstest.Access, v, ct, nil); err != nil {
			t.Errorf("KEK %d after another closed: Unwrap = %v", i+1, err)
		}
	}
	if _, _, err := keks[0].Wrap(ctx, []byte("x"), nil); err == nil {
		t.Errorf("Wrap on a closed KEK = nil error")
	}
}

func BenchmarkWrap32(b *testing.B) {
	module := os.Getenv("DOMICILE_TEST_PKCS11_MODULE")
	if module == "" {
		b.Skip("set DOMICILE_TEST_PKCS11_MODULE (see .ci/softhsm.sh)")
	}
	k, err := Open(context.Background(), Config{Module: module, TokenLabel: os.Getenv("DOMICILE_TEST_PKCS11_TOKEN"),
		PIN: os.Getenv("DOMICILE_TEST_PKCS11_PIN"), KeyLabelPrefix: "domicile-bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	pt := make([]byte, 32)
	for b.Loop() {
		if _, _, err := k.Wrap(context.Background(), pt, []byte("aad")); err != nil {
			b.Fatal(err)
		}
	}
}
