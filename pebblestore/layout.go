package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"

	"domicile"
)

// layoutVersion is the key layout this build writes: 2, subjects' rows
// under slots. Layout 1 keyed them by the subject reference and had no
// version setting.
const layoutVersion = 2

// upgradeBatchKeys and upgradeBatchBytes bound one batch of the upgrade.
var (
	upgradeBatchKeys  = 1024
	upgradeBatchBytes = 4 << 20
)

// upgradeHook, when set (by tests), is called after each batch the upgrade
// commits; an error stops the upgrade there, as a crash would.
var upgradeHook func(batches int) error

// openLayout reads the store's name key and layout version, making a new
// store's, and upgrades a store of layout 1.
func (s *Store) openLayout(ctx context.Context) error {
	v, err := s.get(settingKey("layout"))
	switch {
	case err == nil:
		n, k := binary.Uvarint(v)
		if k <= 0 {
			return fmt.Errorf("pebblestore: layout version: %w", errMalformed)
		}
		if n != layoutVersion {
			return fmt.Errorf("pebblestore: the store's key layout is version %d; this build reads version %d", n, layoutVersion)
		}
		key, err := s.get(settingKey("name-key"))
		if err != nil {
			return fmt.Errorf("pebblestore: name key: %w", err)
		}
		if len(key) != nameKeyLen {
			return fmt.Errorf("pebblestore: name key: %w", errMalformed)
		}
		s.setNameKey(key)
		return nil
	case !errors.Is(err, domicile.ErrNotFound):
		return err
	}
	legacy, err := s.hasKeys()
	if err != nil {
		return err
	}
	// The name key, created once: an upgrade interrupted and resumed goes
	// on with the key its first part used.
	key, err := s.get(settingKey("name-key"))
	if errors.Is(err, domicile.ErrNotFound) {
		key = make([]byte, nameKeyLen)
		if _, err := io.ReadFull(s.rand, key); err != nil {
			return fmt.Errorf("pebblestore: name key: %w", err)
		}
		if err := s.db.Set(settingKey("name-key"), key, pebble.Sync); err != nil {
			return fmt.Errorf("pebblestore: name key: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("pebblestore: name key: %w", err)
	} else if len(key) != nameKeyLen {
		return fmt.Errorf("pebblestore: name key: %w", errMalformed)
	}
	s.setNameKey(key)
	if legacy {
		if err := s.upgradeLayout(ctx); err != nil {
			return err
		}
		// Pebble's manifest names the bounds of the tables the upgrade
		// dropped, keys of layout 1. A database starts a new manifest
		// at its first change after it opens and keeps one previous
		// manifest: twice, then.
		for range 2 {
			if err := s.rollManifest(key); err != nil {
				return err
			}
		}
	}
	if err := s.db.Set(settingKey("layout"), binary.AppendUvarint(nil, layoutVersion), pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: layout version: %w", err)
	}
	return nil
}

// rollManifest reopens the database and changes it (writing the name key
// again and flushing), so that it starts a new manifest.
func (s *Store) rollManifest(key []byte) error {
	err := s.db.Close()
	s.db = nil
	s.dropArchive()
	if err != nil {
		return fmt.Errorf("pebblestore: reopen after upgrade: %w", err)
	}
	if s.db, err = openDB(s.dir, s.cacheBytes, s.memtableBytes); err != nil {
		return err
	}
	if err := s.db.Set(settingKey("name-key"), key, pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: reopen after upgrade: %w", err)
	}
	if err := s.db.Flush(); err != nil {
		return fmt.Errorf("pebblestore: reopen after upgrade: %w", err)
	}
	s.dropArchive()
	return nil
}

// hasKeys reports whether the database holds any key: whether a store
// without a layout version is of layout 1 rather than new.
func (s *Store) hasKeys() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, fmt.Errorf("pebblestore: %w", err)
	}
	ok := it.First()
	return ok, errors.Join(it.Error(), it.Close())
}

// upgradeLayout moves every row of layout 1 to its slot: for each key of
// the reference-keyed tables, in batches, it writes the row under the
// subject's slot (drawing the slot, and writing its name, at the
// subject's first row) and deletes the old key. Each batch is atomic and
// holds the names of the slots it draws, so an upgrade interrupted at any
// point resumes where it stopped: what is left in the old tables is what
// remains to move. Once they are empty it compacts their key range, so
// that the old keys leave the tables, and flushes, so that the logs that
// held them become obsolete.
func (s *Store) upgradeLayout(ctx context.Context) error {
	batches := 0
	for _, t := range legacyTables {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{t.old}, UpperBound: []byte{t.old + 1}})
		if err != nil {
			return fmt.Errorf("pebblestore: upgrade: %w", err)
		}
		pb := s.db.NewBatch()
		drawn := map[domicile.SubjectRef]slot{} // slots drawn in pb
		commit := func() error {
			if pb.Count() == 0 {
				return nil
			}
			if err := pb.Commit(pebble.Sync); err != nil {
				return fmt.Errorf("pebblestore: upgrade: %w", err)
			}
			pb.Close()
			for ref, sl := range drawn {
				s.slots.put(ref, sl)
			}
			clear(drawn)
			pb = s.db.NewBatch()
			batches++
			if upgradeHook != nil {
				return upgradeHook(batches)
			}
			return nil
		}
		err = func() error {
			for ok := it.First(); ok; ok = it.Next() {
				if err := ctx.Err(); err != nil {
					return err
				}
				k := it.Key()
				if len(k) < 33 {
					return fmt.Errorf("pebblestore: upgrade: key of table %q: %w", t.old, errMalformed)
				}
				ref := domicile.SubjectRef(k[1:33])
				sl, ok := drawn[ref]
				if !ok {
					var found bool
					if sl, found, err = s.lookupSlot(ref); err != nil {
						return err
					}
					if !found {
						if sl, err = s.newSlot(); err != nil {
							return err
						}
						drawn[ref] = sl
						pb.Set(s.nameOf(ref), sl[:], nil)
					}
				}
				v, err := it.ValueAndErr()
				if err != nil {
					return fmt.Errorf("pebblestore: upgrade: %w", err)
				}
				if t.old == 's' {
					sub, err := decLegacySubject(ref, v)
					if err != nil {
						return fmt.Errorf("pebblestore: upgrade: subject: %w", err)
					}
					v = encSubject(sub)
				}
				pb.Set(append(slotKey(t.new, sl), k[33:]...), v, nil)
				pb.Delete(k, nil)
				if int(pb.Count()) >= 2*upgradeBatchKeys || pb.Len() >= upgradeBatchBytes {
					if err := commit(); err != nil {
						return err
					}
				}
			}
			if err := it.Error(); err != nil {
				return fmt.Errorf("pebblestore: upgrade: %w", err)
			}
			return commit()
		}()
		it.Close()
		pb.Close()
		if err != nil {
			return err
		}
	}
	lo, hi := []byte{legacyTables[0].old}, []byte{legacyTables[0].old + 1}
	for _, t := range legacyTables {
		lo[0], hi[0] = min(lo[0], t.old), max(hi[0], t.old+1)
	}
	if err := s.db.Compact(ctx, lo, hi, true); err != nil {
		return fmt.Errorf("pebblestore: upgrade: compact: %w", err)
	}
	return s.db.Flush()
}
