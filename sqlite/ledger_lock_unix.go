//go:build unix

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockEntity holds the ledger's decision lock, a file lock (flock) on
// transfers.lock beside transfers.db, until the returned function is
// called: every process that opens the ledger decides and records the
// transfers of an entity under it (transfer.EntityLocker), so that two
// cell processes never decide on the same counts. One lock serves every
// entity: a deployment declares one. The kernel drops a lock whose
// process dies, so a crash leaves nothing held; it waits until ctx ends.
func (l *Ledger) LockEntity(ctx context.Context, entity string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(l.dir, "transfers.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ledger lock: %w", err)
	}
	wait := 50 * time.Microsecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("sqlite: ledger lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("sqlite: ledger lock: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Millisecond)
	}
}
