package postgres

import "context"

// OpenWithHashCache opens a store whose writer keeps only n recent
// hashes, so that appends read older ones from the database.
func OpenWithHashCache(ctx context.Context, dsn, schema, blobDir string, n int) (*Store, error) {
	return open(ctx, dsn, schema, blobDir, n)
}
