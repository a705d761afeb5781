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
		{"TokenLifecycle", testTokenLifecycle},
		{"ControlLogRace", testControlLogRace},
		{"ControlLogTamper", testControlLogTamper},
		{"Directory", testDirectory},
		{"DirectoryBatch", testDirectoryBatch},
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

// mint is the minting event of t.
func mint(t domicile.Token) domicile.ControlEvent {
	return domicile.ControlEvent{Time: t.Created, Action: domicile.ControlMint, Token: t.ID, Role: t.Role, Jurisdiction: t.Jurisdiction, Expires: t.Expires, Actor: "test"}
}

func tokenHash(id string) [32]byte { return sha256.Sum256([]byte("secret of " + id)) }

// mustPut stores t with its minting event.
func mustPut(t *testing.T, c domicile.ControlStore, tok domicile.Token) {
	t.Helper()
	if err := c.PutToken(context.Background(), tok, tokenHash(tok.ID), mint(tok)); err != nil {
		t.Fatalf("PutToken(%s): %v", tok.ID, err)
	}
}

// controlLog returns the whole control log, checking its chain.
func controlLog(t *testing.T, c domicile.ControlStore) []domicile.ControlEvent {
	t.Helper()
	var all []domicile.ControlEvent
	seq, prev := int64(0), domicile.ZeroControlHash
	for {
		page, err := c.ControlLog(context.Background(), seq, 3)
		if err != nil {
			t.Fatalf("ControlLog(%d): %v", seq, err)
		}
		if len(page) == 0 {
			return all
		}
		if seq, prev, err = domicile.VerifyControlLog(page, seq, prev); err != nil {
			t.Fatalf("the control log's chain: %v", err)
		}
		all = append(all, page...)
	}
}

func testTokens(t *testing.T, c domicile.ControlStore) {
	ctx := context.Background()
	tokens := []domicile.Token{
		{ID: "tok-admin", Role: domicile.RoleAdmin, Jurisdiction: "CN", Note: domicile.AdminFileNote, Created: t0},
		{ID: "tok-subject", Role: domicile.RoleSubject, Jurisdiction: "DE", Subject: Ref("alice").String(), Note: "alice's phone", Created: t0.Add(1), Expires: t0.Add(24 * time.Hour)},
		// A privacy-page link's token: its expiry is kept to the nanosecond.
		{ID: "tok-link", Role: domicile.RoleSubject, Jurisdiction: "CN", Subject: Ref("bob").String(), Created: t0.Add(2), Expires: t0.Add(15*time.Minute + 3)},
	}
	hash := tokenHash
	for _, tok := range tokens {
		mustPut(t, c, tok)
	}
	for _, want := range tokens {
		got, err := c.TokenByHash(ctx, hash(want.ID))
		if err != nil {
			t.Fatalf("TokenByHash(%s): %v", want.ID, err)
		}
		if d := cmp.Diff(want, *got); d != "" {
			t.Errorf("TokenByHash(%s) (-want +got):\n%s", want.ID, d)
		}
		got, err = c.Token(ctx, want.ID)
		if err != nil {
			t.Fatalf("Token(%s): %v", want.ID, err)
		}
		if d := cmp.Diff(want, *got); d != "" {
			t.Errorf("Token(%s) (-want +got):\n%s", want.ID, d)
		}
	}
	if _, err := c.TokenByHash(ctx, hash("unknown")); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("TokenByHash(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := c.Token(ctx, "unknown"); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Token(unknown) = %v, want ErrNotFound", err)
	}
	dup := domicile.Token{ID: "tok-admin", Role: domicile.RoleApp, Created: t0}
	if err := c.PutToken(ctx, dup, hash("other"), mint(dup)); err == nil {
		t.Errorf("PutToken with an existing id succeeded, want an error")
	}
	dup = domicile.Token{ID: "tok-other", Role: domicile.RoleApp, Created: t0}
	if err := c.PutToken(ctx, dup, hash("tok-admin"), mint(dup)); err == nil {
		t.Errorf("PutToken with an existing secret hash succeeded, want an error")
	}
	if got, err := c.TokenByHash(ctx, hash("tok-admin")); err != nil || got.ID != "tok-admin" || got.Role != domicile.RoleAdmin {
		t.Errorf("after failed duplicates, TokenByHash(tok-admin) = %+v, %v", got, err)
	}
	// Each minting is one event; the failed ones left none.
	log := controlLog(t, c)
	if len(log) != 3 || log[0].Action != domicile.ControlMint || log[0].Token != "tok-admin" || log[1].Token != "tok-subject" ||
		!log[1].Expires.Equal(t0.Add(24*time.Hour)) || !log[2].Expires.Equal(t0.Add(15*time.Minute+3)) || log[0].Prev != domicile.ZeroControlHash {
		t.Fatalf("control log after three mintings: %+v", log)
	}
	if n, err := c.Revocations(ctx); err != nil || n != 0 {
		t.Errorf("Revocations before any = %d, %v; want 0", n, err)
	}

	// Revoking a subject's tokens marks exactly those, once, unlinks
	// them, and is one event naming no one.
	second := domicile.Token{ID: "tok-subject-2", Role: domicile.RoleSubject, Jurisdiction: "DE", Subject: Ref("alice").String(), Created: t0.Add(2)}
	mustPut(t, c, second)
	early := domicile.Token{ID: "tok-subject-0", Role: domicile.RoleSubject, Jurisdiction: "DE", Subject: Ref("alice").String(), Note: "old", Created: t0.Add(3)}
	mustPut(t, c, early)
	if _, err := c.RevokeToken(ctx, early.ID, domicile.ControlEvent{Time: t0.Add(time.Minute), Action: domicile.ControlRevoke, Token: early.ID, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	at := t0.Add(time.Hour)
	if n, err := c.RevokeSubjectTokens(ctx, Ref("alice").String(), at); err != nil || n != 2 {
		t.Fatalf("RevokeSubjectTokens(alice) = %d, %v; want 2, nil", n, err)
	}
	log = controlLog(t, c)
	last := log[len(log)-1]
	if last.Action != domicile.ControlRevokeSubject || last.Count != 2 || last.Token != "" || !last.Time.Equal(at) {
		t.Errorf("the erasure's event = %+v, want revoke-subject of 2 tokens naming none", last)
	}
	if n, err := c.Revocations(ctx); err != nil || n != last.Seq {
		t.Errorf("Revocations = %d, %v; want %d", n, err, last.Seq)
	}
	if n, err := c.RevokeSubjectTokens(ctx, Ref("alice").String(), at.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("second RevokeSubjectTokens(alice) = %d, %v; want 0, nil", n, err)
	}
	if got := controlLog(t, c); len(got) != len(log) {
		t.Errorf("revoking no token appended %d events", len(got)-len(log))
	}
	for _, id := range []string{"tok-subject", "tok-subject-2"} {
		got, err := c.TokenByHash(ctx, hash(id))
		if err != nil || !got.Revoked.Equal(at) || got.Subject != "" || got.Note != "" {
			t.Errorf("TokenByHash(%s) after revocation = %+v, %v; want revoked at %v, no subject reference, no note", id, got, err, at)
		}
	}
	if got, err := c.Token(ctx, early.ID); err != nil || !got.Revoked.Equal(t0.Add(time.Minute)) || got.Subject != "" || got.Note != "" {
		t.Errorf("a token revoked before the erasure = %+v, %v; want its revocation time, and unlinked", got, err)
	}
	if got, err := c.TokenByHash(ctx, hash("tok-admin")); err != nil || !got.Revoked.IsZero() {
		t.Errorf("TokenByHash(tok-admin) after revoking alice's = %+v, %v; want not revoked", got, err)
	}
	if n, err := c.RevokeSubjectTokens(ctx, "", at); err != nil || n != 0 {
		t.Errorf("RevokeSubjectTokens(\"\") = %d, %v; want 0, nil", n, err)
	}
}

func testTokenLifecycle(t *testing.T, c domicile.ControlStore) {
	ctx := context.Background()
	app := domicile.Token{ID: "tok-app", Role: domicile.RoleApp, Jurisdiction: "CN", Note: "checkout service", Created: t0, Expires: t0.Add(90 * 24 * time.Hour)}
	mustPut(t, c, app)

	// Revocation: once, with one event; again, nothing.
	rev := domicile.ControlEvent{Time: t0.Add(time.Minute), Action: domicile.ControlRevoke, Token: app.ID, Role: app.Role, Jurisdiction: app.Jurisdiction, Actor: "tok-admin"}
	got, err := c.RevokeToken(ctx, app.ID, rev)
	if err != nil || !got.Revoked.Equal(rev.Time) || got.ID != app.ID || got.Note != app.Note {
		t.Fatalf("RevokeToken = %+v, %v; want revoked at %v", got, err, rev.Time)
	}
	if got, err := c.TokenByHash(ctx, tokenHash(app.ID)); err != nil || !got.Revoked.Equal(rev.Time) || got.Active(t0) {
		t.Errorf("TokenByHash after revocation = %+v, %v", got, err)
	}
	again := rev
	again.Time = t0.Add(time.Hour)
	if got, err := c.RevokeToken(ctx, app.ID, again); err != nil || !got.Revoked.Equal(rev.Time) {
		t.Errorf("second RevokeToken = %+v, %v; want the first revocation unchanged", got, err)
	}
	if _, err := c.RevokeToken(ctx, "tok-none", rev); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("RevokeToken(unknown) = %v, want ErrNotFound", err)
	}
	log := controlLog(t, c)
	if len(log) != 2 || log[1].Action != domicile.ControlRevoke || log[1].Actor != "tok-admin" {
		t.Fatalf("control log after a revocation and a repeated one: %+v", log)
	}
	if n, err := c.Revocations(ctx); err != nil || n != 2 {
		t.Errorf("Revocations = %d, %v; want 2", n, err)
	}

	// Rotation: the old is revoked and the new stored, in one step.
	op := domicile.Token{ID: "tok-op", Role: domicile.RoleOperator, Jurisdiction: "CN", Note: "on call", Created: t0, Expires: t0.Add(time.Hour)}
	mustPut(t, c, op)
	next := op
	next.ID, next.Created, next.Expires = "tok-op-2", t0.Add(time.Minute), t0.Add(2*time.Hour)
	rot := domicile.ControlEvent{Time: next.Created, Action: domicile.ControlRotate, Token: next.ID, Replaces: op.ID, Role: op.Role, Jurisdiction: op.Jurisdiction, Expires: next.Expires, Actor: "tok-admin"}
	if err := c.RotateToken(ctx, op.ID, next, tokenHash(next.ID), rot); err != nil {
		t.Fatalf("RotateToken: %v", err)
	}
	if got, err := c.Token(ctx, op.ID); err != nil || !got.Revoked.Equal(next.Created) {
		t.Errorf("the rotated token = %+v, %v; want revoked at the rotation", got, err)
	}
	if got, err := c.TokenByHash(ctx, tokenHash(next.ID)); err != nil || d(next, *got) != "" {
		t.Errorf("the new token = %+v, %v; want %+v", got, err, next)
	}
	if err := c.RotateToken(ctx, op.ID, domicile.Token{ID: "tok-op-3", Role: op.Role, Created: t0}, tokenHash("tok-op-3"), rot); !errors.Is(err, domicile.ErrVersionMismatch) {
		t.Errorf("rotating a revoked token = %v, want ErrVersionMismatch", err)
	}
	if err := c.RotateToken(ctx, "tok-none", domicile.Token{ID: "tok-op-4", Role: op.Role, Created: t0}, tokenHash("tok-op-4"), rot); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("rotating an unknown token = %v, want ErrNotFound", err)
	}
	for _, id := range []string{"tok-op-3", "tok-op-4"} {
		if _, err := c.Token(ctx, id); !errors.Is(err, domicile.ErrNotFound) {
			t.Errorf("a refused rotation stored %s: %v", id, err)
		}
	}
	// A rotation to an existing secret fails whole: the old stays valid.
	mustPut(t, c, domicile.Token{ID: "tok-aud", Role: domicile.RoleAuditor, Jurisdiction: "DE", Created: t0})
	clash := domicile.Token{ID: "tok-aud-2", Role: domicile.RoleAuditor, Jurisdiction: "DE", Created: t0}
	if err := c.RotateToken(ctx, "tok-aud", clash, tokenHash(next.ID), rot); err == nil {
		t.Errorf("a rotation to an existing secret hash succeeded")
	}
	if got, err := c.Token(ctx, "tok-aud"); err != nil || !got.Revoked.IsZero() {
		t.Errorf("after a failed rotation the old token = %+v, %v; want it valid", got, err)
	}
	log = controlLog(t, c)
	last := log[len(log)-1]
	if last.Action != domicile.ControlMint || log[len(log)-2].Action != domicile.ControlRotate || log[len(log)-2].Replaces != op.ID {
		t.Errorf("control log after a rotation: %+v", log)
	}
	if n, err := c.Revocations(ctx); err != nil || n != log[len(log)-2].Seq {
		t.Errorf("Revocations after a rotation = %d, %v; want %d", n, err, log[len(log)-2].Seq)
	}

	// Listing: in id order, by page, by role, only the active ones.
	all := list(t, c, domicile.TokenQuery{})
	if want := []string{"tok-app", "tok-aud", "tok-op", "tok-op-2"}; !slicesEqual(ids(all), want) {
		t.Errorf("ListTokens = %v, want %v", ids(all), want)
	}
	if got := ids(list(t, c, domicile.TokenQuery{Role: domicile.RoleOperator})); !slicesEqual(got, []string{"tok-op", "tok-op-2"}) {
		t.Errorf("ListTokens(operator) = %v", got)
	}
	if got := ids(list(t, c, domicile.TokenQuery{ActiveAt: t0.Add(30 * time.Minute)})); !slicesEqual(got, []string{"tok-aud", "tok-op-2"}) {
		t.Errorf("ListTokens(active) = %v, want tok-aud, tok-op-2", got)
	}
	if got := ids(list(t, c, domicile.TokenQuery{ActiveAt: t0.Add(3 * time.Hour)})); !slicesEqual(got, []string{"tok-aud"}) {
		t.Errorf("ListTokens(active, after tok-op-2 expired) = %v, want tok-aud", got)
	}
	if got := ids(list(t, c, domicile.TokenQuery{Role: domicile.RoleAdmin})); len(got) != 0 {
		t.Errorf("ListTokens(admin) = %v, want none", got)
	}
}

// list pages through ListTokens two at a time.
func list(t *testing.T, c domicile.ControlStore, q domicile.TokenQuery) []domicile.Token {
	t.Helper()
	var out []domicile.Token
	q.Limit = 2
	for {
		page, err := c.ListTokens(context.Background(), q)
		if err != nil {
			t.Fatalf("ListTokens(%+v): %v", q, err)
		}
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		q.After = page[len(page)-1].ID
	}
}

func ids(ts []domicile.Token) []string {
	out := []string{}
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func slicesEqual(a, b []string) bool { return cmp.Equal(a, b) }

func d(want, got domicile.Token) string { return cmp.Diff(want, got) }

// testControlLogRace mints tokens from many goroutines at once: every
// minting is in the log exactly once, and the chain holds.
func testControlLogRace(t *testing.T, c domicile.ControlStore) {
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := domicile.Token{ID: fmt.Sprint("tok-", i), Role: domicile.RoleApp, Jurisdiction: "CN", Created: t0}
			if i%3 == 0 {
				tok.Role = domicile.RoleAuditor
			}
			errs <- c.PutToken(context.Background(), tok, tokenHash(tok.ID), mint(tok))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent PutToken: %v", err)
		}
	}
	log := controlLog(t, c)
	seen := map[string]bool{}
	for _, e := range log {
		seen[e.Token] = true
	}
	if len(log) != n || len(seen) != n {
		t.Errorf("%d concurrent mintings left %d events for %d tokens", n, len(log), len(seen))
	}
}

// testControlLogTamper checks that VerifyControlLog catches an edited,
// removed or reordered entry.
func testControlLogTamper(t *testing.T, c domicile.ControlStore) {
	for i := range 4 {
		mustPut(t, c, domicile.Token{ID: fmt.Sprint("tok-", i), Role: domicile.RoleApp, Jurisdiction: "CN", Created: t0.Add(time.Duration(i))})
	}
	log := controlLog(t, c)
	edits := map[string]func([]domicile.ControlEvent) []domicile.ControlEvent{
		"role changed": func(l []domicile.ControlEvent) []domicile.ControlEvent { l[1].Role = domicile.RoleAdmin; return l },
		"time changed": func(l []domicile.ControlEvent) []domicile.ControlEvent {
			l[2].Time = l[2].Time.Add(time.Second)
			return l
		},
		"entry removed":   func(l []domicile.ControlEvent) []domicile.ControlEvent { return append(l[:1:1], l[2:]...) },
		"entries swapped": func(l []domicile.ControlEvent) []domicile.ControlEvent { l[1], l[2] = l[2], l[1]; return l },
		"hash recomputed": func(l []domicile.ControlEvent) []domicile.ControlEvent {
			l[1].Actor = "x"
			l[1].Seal(l[1].Seq, l[1].Prev)
			return l
		},
		"first prev edited": func(l []domicile.ControlEvent) []domicile.ControlEvent { l[0].Prev = l[3].Hash; return l },
	}
	for name, edit := range edits {
		l := edit(append([]domicile.ControlEvent(nil), log...))
		var ce *domicile.ControlChainError
		if _, _, err := domicile.VerifyControlLog(l, 0, domicile.ZeroControlHash); !errors.As(err, &ce) {
			t.Errorf("%s: VerifyControlLog = %v, want a ControlChainError", name, err)
		}
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

// testDirectoryBatch records directory entries in batches: a batch is
// recorded whole, and one that holds a placed or repeated key records
// none of its entries.
func testDirectoryBatch(t *testing.T, c domicile.ControlStore) {
	ctx := context.Background()
	if err := c.PutHomes(ctx, nil); err != nil {
		t.Errorf("PutHomes(none) = %v, want nil", err)
	}
	entry := func(key, cell, reg string) domicile.HomeEntry {
		return domicile.HomeEntry{Key: Ref(key), Home: domicile.Home{Cell: cell, Ref: Ref(reg)}}
	}
	var batch []domicile.HomeEntry
	for i := range 50 {
		batch = append(batch, entry(fmt.Sprint("key ", i), fmt.Sprint("cell-", i%3), fmt.Sprint("reg ", i)))
	}
	if err := c.PutHomes(ctx, batch); err != nil {
		t.Fatalf("PutHomes: %v", err)
	}
	for _, e := range batch {
		if got, err := c.Home(ctx, e.Key); err != nil || got != e.Home {
			t.Errorf("Home after PutHomes = %+v, %v; want %+v", got, err, e.Home)
		}
	}
	placed := entry("key 3", "us-east1", "another registration")
	tests := []struct {
		name  string
		batch []domicile.HomeEntry
	}{
		{"a placed key last", []domicile.HomeEntry{entry("new a", "cn-gz1", "a"), entry("new b", "cn-gz1", "b"), placed}},
		{"a placed key first", []domicile.HomeEntry{placed, entry("new a", "cn-gz1", "a")}},
		{"a key twice", []domicile.HomeEntry{entry("new a", "cn-gz1", "a"), entry("new b", "cn-gz1", "b"), entry("new a", "eu-fra1", "a2")}},
	}
	for _, tc := range tests {
		if err := c.PutHomes(ctx, tc.batch); !errors.Is(err, domicile.ErrVersionMismatch) {
			t.Errorf("%s: PutHomes = %v, want ErrVersionMismatch", tc.name, err)
		}
	}
	for _, key := range []string{"new a", "new b"} {
		if _, err := c.Home(ctx, Ref(key)); !errors.Is(err, domicile.ErrNotFound) {
			t.Errorf("Home(%s) after refused batches = %v, want ErrNotFound: a refused batch records nothing", key, err)
		}
	}
	if got, err := c.Home(ctx, batch[3].Key); err != nil || got != batch[3].Home {
		t.Errorf("Home of the placed key after refused batches = %+v, %v; want it unchanged", got, err)
	}
	// An entry of a batch is an entry like any other: it is deleted, and
	// placed again, one at a time.
	if err := c.DeleteHome(ctx, batch[0].Key); err != nil {
		t.Fatal(err)
	}
	if err := c.PutHome(ctx, batch[0].Key, placed.Home); err != nil {
		t.Errorf("PutHome after deleting a batched entry: %v", err)
	}
	// The bound: a full batch is recorded, one more entry is refused.
	full := make([]domicile.HomeEntry, domicile.MaxHomesPerBatch+1)
	for i := range full {
		full[i] = entry(fmt.Sprint("full ", i), "cn-gz1", fmt.Sprint("full reg ", i))
	}
	if err := c.PutHomes(ctx, full); domicile.ErrorCode(err) != domicile.EInvalid {
		t.Errorf("PutHomes of %d entries = %v, want an %s error", len(full), err, domicile.EInvalid)
	}
	if _, err := c.Home(ctx, full[0].Key); !errors.Is(err, domicile.ErrNotFound) {
		t.Errorf("Home after an oversized batch = %v, want ErrNotFound", err)
	}
	if err := c.PutHomes(ctx, full[:domicile.MaxHomesPerBatch]); err != nil {
		t.Fatalf("PutHomes of %d entries: %v", domicile.MaxHomesPerBatch, err)
	}
	last := full[domicile.MaxHomesPerBatch-1]
	if got, err := c.Home(ctx, last.Key); err != nil || got != last.Home {
		t.Errorf("Home of a full batch's last entry = %+v, %v; want %+v", got, err, last.Home)
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
