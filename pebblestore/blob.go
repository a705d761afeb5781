package pebblestore

import (
	"fmt"

	"domicile"
)

// gcBlobs removes temporary blobs and blobs that no object references: the
// leftovers of writes that crashed or lost a race.
func (s *Store) gcBlobs() error {
	live := map[string]bool{}
	err := s.scan([]byte{tObject}, []byte{tObject + 1}, func(k, v []byte) (bool, error) {
		var o domicile.StoredObject
		if err := decObject(&o, v); err != nil {
			return false, err
		}
		if o.Blob != "" {
			live[o.Blob] = true
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("pebblestore: gc blobs: %w", err)
	}
	return s.blobs.GC(live)
}
