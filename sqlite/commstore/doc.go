// Package commstore keeps, in SQLite files of their own under a
// deployment's control directory, what the communication side of domicile
// records: notice plans and their deliveries (notices.db) and authority
// requests (authority.db). It is apart from package sqlite, the cells'
// storage, so that the storage layer does not depend on the packages that
// write these documents.
package commstore

import (
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

func nsTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }
