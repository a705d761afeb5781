package domiciletest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"domicile"
)

// TestControlStore runs the conformance suite of domicile.ControlStore.
// open must return a new, empty store; the suite closes it.
func TestControlStore(t *testing.T, open func(t *testing.T) domicile.ControlStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, c domicile.ControlStore)
	}{
		{"Tokens", testTokens},
		{"Directory", testDirectory},
		{"DirectoryRace", testDirectoryRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := open(t)
			mustClose(t, c)
			tc.run(t, c)
		})
	}
}

func testTokens(t *testing.T, c domicile.ControlStore) {
	ctx := context.Background()
	tokens := []domicile.Token{
		{ID: "tok-admin", Role: domicile.RoleAdmin, Jurisdiction: "CN", Created: t0},
		{ID: "tok-subject", Role: domicile.RoleSubject, Jurisdiction: "DE", Subject: Ref("alice").String(), Created: t0.Add(1)},
		// A privacy-page link's token: its expiry is kept to the nanosecond.
		{ID: "tok-link", Role: domicile.RoleSubject, Jurisdiction: "CN", Subject: Ref("bob").String(), Created: t0.Add(2), Expires: t0.Add(15*time.Minute + 3)},
	}
	hash := func(id string) [32]byte { return sha256.Sum256([]byte("secret of " + id)) }
	for _, tok := range tokens {
		if err := c.PutToken(ctx, tok, hash(tok.ID)); err != nil {
			t.Fatalf("PutToken(%s): %v", tok.ID, err)
		}
	}
	for _, want := range tokens {
		got, err := c.TokenByHash(ctx, hash(want.ID))
		if err != nil {
			t.Fatalf("TokenByHash(%s): %v", want.ID, err)
		}
		if d := cmp.Diff(want, *got); d != "" {
			t.Errorf("TokenByHash(%s) (-want +got):\n%s", want.ID, d)
		}
	}
	if _, err := c.TokenByHash(ctx, hash("unknown")); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("TokenByHash(unknown) = %v, want ErrNotFound", err)
	}
	if err := c.PutToken(ctx, domicile.Token{ID: "tok-admin", Role: domicile.RoleApp, Created: t0}, hash("other")); err == nil {
		t.Errorf("PutToken with an existing id succeeded, want an error")
	}
	if err := c.PutToken(ctx, domicile.Token{ID: "tok-other", Role: domicile.RoleApp, Created: t0}, hash("tok-admin")); err == nil {
		t.Errorf("PutToken with an existing secret hash succeeded, want an error")
	}
	if got, err := c.TokenByHash(ctx, hash("tok-admin")); err != nil || got.ID != "tok-admin" || got.Role != domicile.RoleAdmin {
		t.Errorf("after failed duplicates, TokenByHash(tok-admin) = %+v, %v", got, err)
	}

	// Revoking a subject's tokens marks exactly those, once.
	second := domicile.Token{ID: "tok-subject-2", Role: domicile.RoleSubject, Jurisdiction: "DE", Subject: Ref("alice").String(), Created: t0.Add(2)}
	if err := c.PutToken(ctx, second, hash(second.ID)); err != nil {
		t.Fatalf("PutToken(%s): %v", second.ID, err)
	}
	at := t0.Add(time.Hour)
	if n, err := c.RevokeSubjectTokens(ctx, Ref("alice").String(), at); err != nil || n != 2 {
		t.Fatalf("RevokeSubjectTokens(alice) = %d, %v; want 2, nil", n, err)
	}
	if n, err := c.RevokeSubjectTokens(ctx, Ref("alice").String(), at.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("second RevokeSubjectTokens(alice) = %d, %v; want 0, nil", n, err)
	}
	for _, id := range []string{"tok-subject", "tok-subject-2"} {
		got, err := c.TokenByHash(ctx, hash(id))
		if err != nil || !got.Revoked.Equal(at) || got.Subject != "" {
			t.Errorf("TokenByHash(%s) after revocation = %+v, %v; want revoked at %v and no subject reference", id, got, err, at)
		}
	}
	if got, err := c.TokenByHash(ctx, hash("tok-admin")); err != nil || !got.Revoked.IsZero() {
		t.Errorf("TokenByHash(tok-admin) after revoking alice's = %+v, %v; want not revoked", got, err)
	}
	if n, err := c.RevokeSubjectTokens(ctx, "", at); err != nil || n != 0 {
		t.Errorf("RevokeSubjectTokens(\"\") = %d, %v; want 0, nil", n, err)
	}
}

func testDirectory(t *testing.T, c domicile.ControlStore) {
	ctx := context.Background()
	a, b := Ref("alice"), Ref("bob")
	home := func(cell, reg string) domicile.Home { return domicile.Home{Cell: cell, Ref: Ref(reg)} }
	if _, err := c.Home(ctx, a); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Home(unknown) = %v, want ErrNotFound", err)
	}
	if err := c.PutHome(ctx, a, home("cn-gz1", "alice-1")); err != nil {
		t.Fatalf("PutHome: %v", err)
	}
	if err := c.PutHome(ctx, b, home("eu-fra1", "bob-1")); err != nil {
		t.Fatalf("PutHome: %v", err)
	}
	if err := c.PutHome(ctx, a, home("us-east1", "alice-2")); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("PutHome of a placed subject = %v, want ErrVersionMismatch", err)
	}
	for key, want := range map[domicile.SubjectRef]domicile.Home{a: home("cn-gz1", "alice-1"), b: home("eu-fra1", "bob-1")} {
		if got, err := c.Home(ctx, key); err != nil || got != want {
			t.Errorf("Home = %+v, %v; want %+v", got, err, want)
		}
	}
	if err := c.DeleteHome(ctx, a); err != nil {
		t.Fatalf("DeleteHome: %v", err)
	}
	if _, err := c.Home(ctx, a); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Home after DeleteHome = %v, want ErrNotFound", err)
	}
	if err := c.DeleteHome(ctx, a); err != nil {
		t.Errorf("DeleteHome of an absent subject = %v, want nil", err)
	}
	if got, err := c.Home(ctx, b); err != nil || got != home("eu-fra1", "bob-1") {
		t.Errorf("Home(bob) after alice's deletion = %+v, %v", got, err)
	}
	// A new registration of the same key has its own reference.
	if err := c.PutHome(ctx, a, home("us-east1", "alice-2")); err != nil {
		t.Errorf("PutHome after DeleteHome: %v", err)
	}
	if got, err := c.Home(ctx, a); err != nil || got != home("us-east1", "alice-2") {
		t.Errorf("Home = %+v, %v; want us-east1 with the new registration's reference", got, err)
	}
}

// testDirectoryRace places one subject from many goroutines at once:
// exactly one placement wins.
func testDirectoryRace(t *testing.T, c domicile.ControlStore) {
	ctx := context.Background()
	for round := range 3 {
		ref := Ref(fmt.Sprint("raced ", round))
		const n = 16
		var wg sync.WaitGroup
		won := make(chan string, n)
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cell := fmt.Sprint("cell-", i)
				switch err := c.PutHome(ctx, ref, domicile.Home{Cell: cell, Ref: Ref(cell)}); {
				case err == nil:
					won <- cell
				case !errors.Is(err, domicile.ErrVersionMismatch):
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(won)
		close(errs)
		for err := range errs {
			t.Errorf("racing PutHome: %v", err)
		}
		var winners []string
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d racing PutHome succeeded (%v), want exactly 1", round, len(winners), winners)
		}
		if got, err := c.Home(ctx, ref); err != nil || got.Cell != winners[0] {
			t.Errorf("round %d: Home = %+v, %v; want the winner %q", round, got, err, winners[0])
		}
	}
}
